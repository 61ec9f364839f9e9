"""The requester withdraws a reward, cancelling it at the provider first if it is scheduled
there."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from bot.domain import RewardRequest, Status, can_cancel
from bot.errors import AlreadyDecided, NotAllowed
from bot.rewards.refusals import already_decided, decided_request
from bot.slack.text import escape
from bot.store import Change, Store
from providers.base import Provider
from providers.errors import OrderRefused, ProviderError

log = logging.getLogger(__name__)


class Cancellation:
    def __init__(self, store: Store, providers: Mapping[str, Provider]) -> None:
        self._store = store
        self._providers = providers

    async def cancel(self, request_id: int, actor: str) -> RewardRequest:
        """The requester withdraws a request (with its whole batch) nobody has finished
        deciding, or a scheduled reward not yet sent: held by the bot until the order starts,
        or scheduled at the provider until its cut-off (the provider cancels it first)."""
        request = await self._store.get(request_id)
        if actor != request.requester_id:
            raise NotAllowed("Only the person who asked for this reward can cancel it.")
        batch = await self._store.batch(request)
        if not all(can_cancel(m, datetime.now(UTC)) for m in batch):
            if any(m.status in (Status.APPROVED, Status.ORDERING, Status.FULFILLED) for m in batch):
                raise AlreadyDecided(
                    f"Reward #{request.id} is already being ordered or sent, so it can no "
                    "longer be cancelled.",
                    request.status,
                )
            raise already_decided(request, actor)
        # A shared provider order is cancelled once, for all its requests.
        ordered = {m.provider_order_id: m for m in batch if m.status is Status.ORDERING}
        for member in ordered.values():
            await self._cancel_at_provider(member)
        won = await self._store.transition_all(
            [Change(m.id, m.status, Status.CANCELLED, {"by": "requester"}) for m in batch], actor
        )
        return await decided_request(self._store, request.id, actor, won)

    async def _cancel_at_provider(self, request: RewardRequest) -> None:
        provider = self._providers.get(request.provider)
        if provider is None or request.provider_order_id is None:
            raise NotAllowed(
                f"Reward #{request.id} is being ordered right now; try again in a minute."
            )
        try:
            await provider.cancel_order(request.provider_order_id)
        except OrderRefused as refusal:
            raise NotAllowed(
                f"{request.provider} can no longer cancel reward #{request.id}: "
                f"{escape(refusal.message)}"
            ) from None
        except ProviderError as exc:
            log.warning("cancelling request %s at %s failed: %r", request.id, provider.name, exc)
            raise NotAllowed(
                f"{request.provider} did not answer, so reward #{request.id} is not cancelled. "
                "Try again in a minute."
            ) from None
