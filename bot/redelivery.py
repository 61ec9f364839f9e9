"""Resend and recovery after delivery: the recipient asks for their card again, or an
approver has the provider email it to a corrected address.

The card's secrets are never stored, so a resend reads them from the provider again and DMs
them to the recipient alone, exactly as the first delivery did.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from bot import slack_views
from bot.domain import RewardRequest, Status
from bot.errors import NotAllowed
from bot.fulfillment import own_part
from bot.policy import Policy
from bot.slack_gateway import SLACK_FAILURES, SlackGateway
from bot.store import Store
from providers.base import OrderState, Provider
from providers.errors import OrderRefused, ProviderError

log = logging.getLogger(__name__)

_EMAIL = re.compile(r"[^@\s<>|]+@[^@\s<>|]+\.[^@\s<>|]+")
# Each click makes the provider send mail or Slack send a DM: one a minute per person is plenty.
_RESEND_COOLDOWN = timedelta(minutes=1)


def looks_like_email(text: str) -> bool:
    """Whether ``text`` is one email address (the provider checks it properly)."""
    return bool(_EMAIL.fullmatch(text))


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

    async def to_recipient(self, request_id: int, actor: str) -> str:
        """DM the card to its recipient again; returns what to tell them."""
        request = await self._store.get(request_id)
        if actor != request.recipient_id:
            raise NotAllowed("Only the person who received this reward can ask for it again.")
        provider, order_id = self._delivered(request)
        if await self._resent_recently(request.id, actor):
            return "It was sent again less than a minute ago; check your messages and email."
        try:
            result = await provider.get_order(order_id)
        except ProviderError as exc:
            log.warning("resend of request %s: %s unavailable: %r", request.id, provider.name, exc)
            return f"{request.provider} did not answer. Please try again in a few minutes."
        in_order = await self._store.requests_with_order(request.provider, order_id)
        own = own_part(request, in_order, result) if result.state is OrderState.COMPLETED else None
        if own is None:
            return f"{request.provider} no longer reports this card as issued. Ask an approver."
        result = own
        if result.redemption is None and not result.delivered_by_provider:
            return f"{request.provider} no longer has a usable card for you. Ask an approver."
        if result.redemption is None:
            if not provider.can_resend:
                return f"{request.provider} emailed this card to you: check your inbox and spam."
            return await self._provider_resend(request, provider, order_id, actor, email=None)
        try:
            await self._gateway.deliver(request, result.redemption)
        except SLACK_FAILURES as exc:
            log.warning("resend of request %s: Slack refused the DM: %r", request.id, exc)
            return "Slack did not take the message. Please try again in a minute."
        await self._store.record_event(request.id, "resent", actor, {"to": "recipient DM"})
        return "Sent again: your card is in the message below."

    async def to_email(self, request_id: int, actor: str, email: str) -> str:
        """An approver has the provider email the card to a corrected address."""
        request = await self.emailable(request_id, actor)
        provider, order_id = self._delivered(request)
        if await self._resent_recently(request.id, actor):
            raise NotAllowed("It was resent less than a minute ago; wait before resending.")
        return await self._provider_resend(request, provider, order_id, actor, email=email)

    async def emailable(self, request_id: int, actor: str) -> RewardRequest:
        """The request, if ``actor`` may have its card emailed to another address."""
        request = await self._store.get(request_id)
        try:
            reviewers = await self._policy.reviewers(request)
        except SLACK_FAILURES:
            raise NotAllowed("Could not check that you are an approver. Try again.") from None
        if actor not in reviewers:
            raise NotAllowed("Only an approver of this reward can resend it.")
        provider, _ = self._delivered(request)
        if not provider.can_resend:
            raise NotAllowed(f"{request.provider} cannot resend a card to another address.")
        return request

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
            await provider.resend(order_id, request.recipient_email, email)
        except OrderRefused as refusal:
            return f"{request.provider} refused to resend it: {slack_views.escape(str(refusal))}"
        except ProviderError as exc:
            log.warning("resend of request %s failed: %r", request.id, exc)
            return f"{request.provider} did not answer. Please try again in a few minutes."
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
        return f"{request.provider} is emailing the card again to {masked}."

    async def _resent_recently(self, request_id: int, actor: str) -> bool:
        since = datetime.now(UTC) - _RESEND_COOLDOWN
        events = await self._store.events(request_id)
        return any(e.kind == "resent" and e.actor == actor and e.at > since for e in events)
