"""Resend and recovery after delivery: the recipient asks for their card again, or an
approver has the provider email it to a corrected address.

A delivered card goes only where its recipient says. An approver may start a correction (the
recipient reported a wrong address), but an address other than the one the card already goes
to (the recipient's Slack profile email when it was ordered, or one they confirmed since) takes
effect only once the recipient confirms it in Slack: they get a DM with the address in full and
*Confirm* / *Not my address* buttons, valid for :data:`CONFIRM_WITHIN`. Only a confirmation
queues the provider's resend to it, and only then is the stored address replaced, so the
recipient's own *Email it to me again* never goes anywhere they did not confirm. Each request,
confirmation, refusal and expiry is an audit event.

Slack only asks: the listener checks who may, queues a durable ``resend`` job and answers at
once (the provider may take longer than Slack waits). One resend a minute per person and
request: the check and the queueing are one transaction, so a double click resends once.

The card's secrets are never stored, so a resend reads them from the provider again and DMs
them to the recipient alone, exactly as the first delivery did.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

from bot import clock, slack_views
from bot.domain import RewardRequest, Status
from bot.errors import NotAllowed
from bot.fulfillment import own_part
from bot.policy import Policy
from bot.slack_gateway import SLACK_FAILURES, SlackGateway
from bot.store import Job, Store
from providers.base import OrderState, Provider
from providers.errors import OrderRefused, OutcomeUnknown, ProviderError

log = logging.getLogger(__name__)

# Each click makes the provider send mail or Slack send a DM: one a minute per person is plenty.
RESEND_COOLDOWN = timedelta(minutes=1)
# How long a recipient has to confirm an address an approver asked to send their card to.
CONFIRM_WITHIN = timedelta(hours=24)


def _mask(email: str) -> str:
    """``jane@home.example`` → ``j***@home.example``."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


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

    # -- asked from Slack --------------------------------------------------------------------

    async def ask_for_recipient(self, request_id: int, actor: str) -> str:
        """The recipient asks for their card again; returns what to tell them now."""
        request = await self._store.get(request_id)
        if actor != request.recipient_id:
            raise NotAllowed("Only the person who received this reward can ask for it again.")
        self._delivered(request)
        if not await self._store.queue_resend(request.id, actor, None, RESEND_COOLDOWN):
            return "It was sent again less than a minute ago; check your messages and email."
        return "Sending it again: look here (or in your inbox) in a moment."

    async def ask_for_email(self, request_id: int, actor: str, email: str) -> str:
        """An approver asks the provider to email the card to a corrected address; returns
        what to tell them now (the job tells them how it went)."""
        request, provider, order_id = await self.emailable(request_id, actor)
        others = await self._store.requests_with_order(request.provider, order_id)
        wanted = email.strip().lower()
        if any((r.recipient_email or "").lower() == wanted for r in others if r.id != request.id):
            # The provider finds a card by its address: two cards at one address get mixed up.
            raise NotAllowed(
                "Another card of the same order already goes to that address; use a different one."
            )
        masked = _mask(email)
        if wanted == (request.recipient_email or "").strip().lower():
            # The address the card already goes to: the recipient's own, nothing to confirm.
            if not await self._store.queue_resend(request.id, actor, email, RESEND_COOLDOWN):
                raise NotAllowed("It was resent less than a minute ago; wait before resending.")
            return f"Asking {provider.name} to email reward #{request.id} to {masked}…"
        change = await self._store.propose_email_change(
            request.id, email.strip(), actor, clock.now() + CONFIRM_WITHIN, masked
        )
        text, blocks = slack_views.email_change_request(request, change)
        try:
            await self._gateway.dm(request.recipient_id, text, blocks)
        except SLACK_FAILURES as exc:
            log.warning("could not ask the recipient of request %s to confirm: %r", request.id, exc)
            raise NotAllowed(
                f"Could not reach <@{request.recipient_id}> in Slack to confirm the address; "
                "try again in a minute."
            ) from None
        return (
            f"Asked <@{request.recipient_id}> to confirm {masked} in Slack. Nothing is sent "
            "there unless they confirm it within 24 hours."
        )

    async def confirm_email(self, change_id: int, actor: str) -> str:
        """The recipient confirms the address: the provider's resend to it is queued."""
        return await self._decide_email(change_id, actor, "confirmed")

    async def decline_email(self, change_id: int, actor: str) -> str:
        """The recipient says the address is not theirs: nothing is sent."""
        return await self._decide_email(change_id, actor, "declined")

    async def _decide_email(self, change_id: int, actor: str, outcome: str) -> str:
        change = await self._store.email_change(change_id)
        request = await self._store.get(change.request_id)
        if actor != request.recipient_id:
            raise NotAllowed("Only the person who received this reward can decide where it goes.")
        if change.outcome is not None:
            return f"This address change was already {change.outcome}."
        masked = _mask(change.email)
        if clock.now() > change.expires_at:
            await self._store.decide_email_change(change, "expired", actor, masked)
            return "This request has expired: nothing was sent. Ask an approver to start again."
        if not await self._store.decide_email_change(change, outcome, actor, masked):
            return "This address change was already decided."
        if outcome == "declined":
            await self._tell(
                change.requested_by,
                f"<@{actor}> said {masked} is not their address: reward #{request.id} was not "
                "sent there.",
            )
            return "Nothing was sent. Thank you for telling us."
        return f"Sending your card to {change.email} now; you will hear how it went."

    async def _tell(self, user_id: str, text: str) -> None:
        try:
            await self._gateway.dm(user_id, text)
        except SLACK_FAILURES as exc:
            log.warning("could not tell %s about an address change: %r", user_id, exc)

    async def emailable(self, request_id: int, actor: str) -> tuple[RewardRequest, Provider, str]:
        """The request, its provider and order, if ``actor`` may have its card emailed to
        another address."""
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
        return request, provider, order_id

    def _delivered(self, request: RewardRequest) -> tuple[Provider, str]:
        if request.status is not Status.FULFILLED or request.provider_order_id is None:
            raise NotAllowed(
                f"Reward #{request.id} has not been delivered, so it cannot be resent."
            )
        provider = self._providers.get(request.provider)
        if provider is None:
            raise NotAllowed(f"{request.provider} is no longer enabled, so it cannot be resent.")
        return provider, request.provider_order_id

    # -- the resend job ----------------------------------------------------------------------

    async def run(self, job: Job) -> None:
        """Resend as asked and tell the asker how it went. Never raises for the provider's or
        Slack's sake: run again, it would send the card again."""
        request = await self._store.get(job.request_id)
        actor = str(job.payload["actor"])
        email = job.payload.get("email")
        try:
            provider, order_id = self._delivered(request)
        except NotAllowed as refusal:
            answer: str | None = str(refusal)
        else:
            if email:
                answer = await self._provider_resend(job, request, provider, order_id, email)
            else:
                answer = await self._to_recipient(job, request, provider, order_id)
        if answer is None:
            return
        try:
            await self._gateway.dm(actor, answer)
        except SLACK_FAILURES as exc:
            log.warning(
                "could not tell %s how resending request %s went: %r", actor, request.id, exc
            )

    async def _to_recipient(
        self, job: Job, request: RewardRequest, provider: Provider, order_id: str
    ) -> str | None:
        """DM the card to its recipient again (or have the provider email it again); what to
        tell them, ``None`` if the card's own message says it all."""
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
        if own.redemption is None:
            if not provider.can_resend:
                return f"{request.provider} emailed this card to you: check your inbox and spam."
            return await self._provider_resend(job, request, provider, order_id, None)
        await self._store.hold(job)  # the fence before the DM
        try:
            await self._gateway.deliver(request, own.redemption)
        except SLACK_FAILURES as exc:
            log.warning("resend of request %s: Slack refused the DM: %r", request.id, exc)
            return "Slack did not take the message. Please ask again in a minute."
        actor = str(job.payload["actor"])
        await self._store.record_event(request.id, "resent", actor, {"to": "recipient DM"})
        return None

    async def _provider_resend(
        self,
        job: Job,
        request: RewardRequest,
        provider: Provider,
        order_id: str,
        email: str | None,
    ) -> str:
        actor = str(job.payload["actor"])
        await self._store.hold(job)  # the fence before the provider call
        try:
            await provider.resend(order_id, request.recipient_email, email)
        except OrderRefused as refusal:
            return f"{request.provider} refused to resend it: {slack_views.escape(str(refusal))}"
        except ProviderError as exc:
            log.warning("resend of request %s failed: %r", request.id, exc)
            return f"{request.provider} did not answer. Please ask again in a few minutes."
        if email is None:
            await self._store.record_event(request.id, "resent", actor, {"to": "email"})
            return f"{request.provider} is emailing the card again to your email address."
        # The audit trail and the people told see the address masked: enough to recognise it.
        masked = _mask(email)
        await self._store.change_recipient_email(
            request.id, email, actor, {"to": f"email {masked}"}
        )
        # Redirecting a card is sensitive: the recipient and the requester hear of it.
        notice = (
            f"<@{actor}> had {request.provider} email reward #{request.id} "
            f"({request.face_value} {slack_views.escape(request.product_name)}) to {masked}."
        )
        for person in dict.fromkeys((request.recipient_id, request.requester_id)):
            try:
                await self._gateway.dm(person, notice)
            except SLACK_FAILURES as exc:
                log.warning("could not tell %s about the resend: %r", person, exc)
        return f"{request.provider} is emailing reward #{request.id} again to {masked}."
