"""What both resend flows share: which delivered card, the provider's resend, telling people."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

from bot.domain import RewardRequest, Status
from bot.errors import NotAllowed
from bot.slack.gateway import SLACK_FAILURES, SlackGateway
from bot.slack.text import escape
from bot.store import Job, Store, mask_email
from providers.base import Provider
from providers.errors import OrderRefused, ProviderError

log = logging.getLogger(__name__)

# Each click makes the provider send mail or Slack send a DM: one a minute per person is plenty.
RESEND_COOLDOWN = timedelta(minutes=1)


def masked_address(email: str) -> str:
    """An address as shared messages show it: masked, and inert in mrkdwn."""
    return escape(mask_email(email))


class ResendSteps:
    """The parts of a resend that both the recipient's own and an approver's redirect use."""

    def __init__(
        self, store: Store, providers: Mapping[str, Provider], gateway: SlackGateway
    ) -> None:
        self._store = store
        self._providers = providers
        self._gateway = gateway

    def delivered(self, request: RewardRequest) -> tuple[Provider, str]:
        """The provider and order of a delivered card; refused if there is none to resend."""
        if request.status is not Status.FULFILLED or request.provider_order_id is None:
            raise NotAllowed(
                f"Reward #{request.id} has not been delivered, so it cannot be resent."
            )
        provider = self._providers.get(request.provider)
        if provider is None:
            raise NotAllowed(f"{request.provider} is no longer enabled, so it cannot be resent.")
        return provider, request.provider_order_id

    async def provider_resend(
        self,
        job: Job,
        request: RewardRequest,
        provider: Provider,
        order_id: str,
        new_email: str | None,
    ) -> str | None:
        """Have the provider email the card again (to ``new_email`` instead, if given); what
        to tell the asker if it did not, ``None`` if it did."""
        await self._store.hold(job)  # the fence before the provider call
        try:
            await provider.resend(order_id, request.recipient_email, new_email)
        except OrderRefused as refusal:
            return f"{request.provider} refused to resend it: {escape(str(refusal))}"
        except ProviderError as exc:
            log.warning("resend of request %s failed: %r", request.id, exc)
            return f"{request.provider} did not answer. Please ask again in a few minutes."
        return None

    async def tell(self, user_id: str, text: str) -> None:
        """DM ``user_id`` how a resend went; a DM Slack refuses is only logged."""
        try:
            await self._gateway.dm(user_id, text)
        except SLACK_FAILURES as exc:
            log.warning("could not tell %s about a resend: %r", user_id, exc)
