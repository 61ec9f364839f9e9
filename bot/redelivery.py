"""Resend and recovery after delivery: the recipient asks for their card again, or an
approver has the provider email it to a corrected address.

The card's secrets are never stored, so a resend reads them from the provider again and DMs
them to the recipient alone, exactly as the first delivery did.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from bot import slack_views
from bot.domain import RewardRequest, Status
from bot.errors import NotAllowed
from bot.policy import Policy
from bot.slack_gateway import SLACK_FAILURES, SlackGateway
from bot.store import Store
from providers.base import OrderState, Provider
from providers.errors import OrderRefused, ProviderError

log = logging.getLogger(__name__)


class Redelivery:
    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        gateway: SlackGateway,
        policy: Policy,
    ) -> None:
        self._store = store
        self._providers = providers
        self._gateway = gateway
        self._policy = policy

    async def to_recipient(self, request_id: int, actor: str) -> str:
        """DM the card to its recipient again; returns what to tell them."""
        request = await self._store.get(request_id)
        if actor != request.recipient_id:
            raise NotAllowed("Only the person who received this reward can ask for it again.")
        provider, order_id = self._delivered(request)
        try:
            result = await provider.get_order(order_id)
        except ProviderError as exc:
            log.warning("resend of request %s: %s unavailable: %r", request.id, provider.name, exc)
            return f"{request.provider} did not answer. Please try again in a few minutes."
        if result.state is not OrderState.COMPLETED:
            return f"{request.provider} no longer reports this card as issued. Ask an approver."
        if result.redemption is None:
            if not provider.can_resend:
                return f"{request.provider} emailed this card to you: check your inbox and spam."
            return await self._provider_resend(request, provider, order_id, actor, email=None)
        await self._gateway.deliver(request, result.redemption)
        await self._store.record_event(request.id, "resent", actor, {"to": "recipient DM"})
        return "Sent again: your card is in the message below."

    async def to_email(self, request_id: int, actor: str, email: str) -> str:
        """An approver has the provider email the card to a corrected address."""
        request = await self._store.get(request_id)
        try:
            reviewers = await self._policy.reviewers(request)
        except SLACK_FAILURES:
            raise NotAllowed("Could not check that you are an approver. Try again.") from None
        if actor not in reviewers:
            raise NotAllowed("Only an approver of this reward can resend it.")
        provider, order_id = self._delivered(request)
        if not provider.can_resend:
            raise NotAllowed(f"{request.provider} cannot resend a card to another address.")
        return await self._provider_resend(request, provider, order_id, actor, email=email)

    def _delivered(self, request: RewardRequest) -> tuple[Provider, str]:
        if request.status is not Status.FULFILLED or request.provider_order_id is None:
            raise NotAllowed(
                f"Reward #{request.id} has not been delivered, so it cannot be resent."
            )
        provider = self._providers.get(request.provider)
        if provider is None:
            raise NotAllowed(f"{request.provider} is no longer enabled, so it cannot be resent.")
        return provider, request.provider_order_id

    async def _provider_resend(
        self,
        request: RewardRequest,
        provider: Provider,
        order_id: str,
        actor: str,
        email: str | None,
    ) -> str:
        try:
            await provider.resend(order_id, email)
        except OrderRefused as refusal:
            return f"{request.provider} refused to resend it: {slack_views.escape(str(refusal))}"
        except ProviderError as exc:
            log.warning("resend of request %s failed: %r", request.id, exc)
            return f"{request.provider} did not answer. Please try again in a few minutes."
        # The address is the recipient's personal data: the audit trail says only that it changed.
        await self._store.record_event(
            request.id, "resent", actor, {"to": "corrected email" if email else "email"}
        )
        where = "the corrected address" if email else "your email address"
        return f"{request.provider} is emailing the card again to {where}."
