"""The recipient's own resend: their card DMed again, or emailed again where it goes now."""

from __future__ import annotations

import logging

from bot.domain import RewardRequest
from bot.errors import NotAllowed
from bot.jobs.fulfil.parts import own_part
from bot.jobs.resend.steps import RESEND_COOLDOWN, ResendSteps, masked_address
from bot.slack.gateway import SLACK_FAILURES, SlackGateway
from bot.store import Job, Store
from providers.base import OrderState, Provider
from providers.errors import OutcomeUnknown, ProviderError

log = logging.getLogger(__name__)


class RecipientResend:
    """The recipient asks for their card again, and the job sends it to them."""

    def __init__(self, store: Store, gateway: SlackGateway, steps: ResendSteps) -> None:
        self._store = store
        self._gateway = gateway
        self._steps = steps

    async def ask(self, request_id: int, actor: str) -> str:
        """The recipient asks for their card again; returns what to tell them now."""
        request = await self._store.get(request_id)
        if actor != request.recipient_id:
            raise NotAllowed("Only the person who received this reward can ask for it again.")
        self._steps.delivered(request)
        if not await self._store.queue_resend(request.id, actor, RESEND_COOLDOWN):
            return "It was sent again less than a minute ago; check your messages and email."
        return "Sending it again: look here (or in your inbox) in a moment."

    async def run(
        self, job: Job, request: RewardRequest, provider: Provider, order_id: str
    ) -> str | None:
        """DM the card to its recipient again (or have the provider email it again, where it
        goes now); what to tell the asker, ``None`` if the card's own message says it all."""
        try:
            result = await provider.get_order(order_id)
        except OutcomeUnknown:
            result = None
        except ProviderError as exc:
            log.warning("resend of request %s: %s unavailable: %r", request.id, provider.name, exc)
            return f"{request.provider} did not answer. Please ask again in a few minutes."
        in_order = await self._store.requests_with_order(request.provider, order_id)
        completed = result is not None and result.state is OrderState.COMPLETED
        own = own_part(request, in_order, result) if result and completed else None
        if own is None or (own.redemption is None and not own.delivered_by_provider):
            return f"{request.provider} no longer has a usable card for you. Ask an approver."
        actor = str(job.payload["actor"])
        if own.redemption is None:
            if not provider.can_resend:
                return f"{request.provider} emailed this card to you: check your inbox and spam."
            failed = await self._steps.provider_resend(job, request, provider, order_id, None)
            if failed is not None:
                return failed
            await self._store.record_event(request.id, "resent", actor, {"to": "email"})
            masked = masked_address(request.recipient_email or "")
            return f"{request.provider} is emailing reward #{request.id} again to {masked}."
        await self._store.hold(job)  # the fence before the DM
        try:
            await self._gateway.deliver(request, own.redemption)
        except SLACK_FAILURES as exc:
            log.warning("resend of request %s: Slack refused the DM: %r", request.id, exc)
            return "Slack did not take the message. Please ask again in a minute."
        await self._store.record_event(request.id, "resent", actor, {"to": "recipient DM"})
        return None
