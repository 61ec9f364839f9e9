"""The ``fulfil`` job's run: each of its provider orders through ordering, polling and delivery."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import timedelta

from bot import clock
from bot.domain import RewardRequest, Status
from bot.jobs.fulfil.bodies import send_at
from bot.jobs.fulfil.delivery import Delivery
from bot.jobs.fulfil.ordering import Ordering
from bot.jobs.fulfil.parts import own_part
from bot.jobs.fulfil.settle import settle
from bot.jobs.runner import RunLater
from bot.slack.gateway import SlackGateway
from bot.store import Job, Store
from providers.base import OrderResult, OrderState, Provider

log = logging.getLogger(__name__)

# A card the provider schedules itself is looked at again this long after its send time.
_AFTER_SEND = timedelta(minutes=1)


class Fulfillment:
    """The ``fulfil`` job: carries approved requests to delivery, resuming where it stopped.

    Each step is persisted before the next side effect: every send of the order before it is
    made, the order id as soon as the provider gives it, the start of the delivery before the
    DM. Run again after a crash, the job looks the order up instead of re-sending it, and
    checks the recipient's DM before re-sending it. An exception leaves the request as it is
    and the job is retried later, with backoff.
    """

    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        gateway: SlackGateway,
        *,
        retry_base_delay: float = 1.0,
        stall_notice_after: int = 5,
        slack_attempts: int = 3,
        delivery_in_flight: float = 15.0,
    ) -> None:
        """``delivery_in_flight``: the longest a delivery DM another run started may still be
        on its way to Slack (its Web API call's timeout, with a margin)."""
        self._store = store
        self._providers = providers
        self._ordering = Ordering(
            store,
            gateway,
            retry_base_delay=retry_base_delay,
            stall_notice_after=stall_notice_after,
            slack_attempts=slack_attempts,
        )
        self._delivery = Delivery(
            store,
            gateway,
            retry_base_delay=retry_base_delay,
            slack_attempts=slack_attempts,
            delivery_in_flight=delivery_in_flight,
        )

    async def run(self, job: Job) -> None:
        """Carry every unfinished order the job's request owns: its own, and the one it shares
        with others of its batch (see :meth:`Store.orders_owned_by`)."""
        postponed: list[RunLater] = []
        for order in await self._store.orders_owned_by(job.request_id):
            try:
                await self._fulfil(job, order)
            except RunLater as wait:
                postponed.append(wait)
        if postponed:
            soonest = min(postponed, key=lambda wait: wait.until)
            raise RunLater(soonest.until, waiting=any(wait.waiting for wait in postponed))

    async def order_changed(self, provider: str, provider_order_id: str) -> None:
        """A webhook said the order changed: its job runs now, in whichever process."""
        if not await self._store.nudge_order(provider, provider_order_id):
            log.info("%s webhook about order %s, which is not waiting", provider, provider_order_id)

    async def _fulfil(self, job: Job, requests: list[RewardRequest]) -> None:
        """One provider order, for one request or (shared) for several of a batch."""
        provider = self._providers.get(requests[0].provider)
        if provider is None:
            # Kept open and retried with backoff: re-enabling the provider resumes it.
            raise RuntimeError(
                f"request {requests[0].id} needs provider {requests[0].provider!r}, which is "
                "not enabled"
            )
        requests = await self._ordering.ready_to_order(job, requests, provider)
        if not requests:
            return
        result = await self._ordering.place_or_look_up(job, requests, provider)
        if result is None:
            return
        if result.state is OrderState.PENDING:
            placed_now = requests[0].provider_order_id is None
            raise _look_again_later(requests[0], provider, placed_now=placed_now)
        if result.state is OrderState.FAILED:
            failure = result.failure_reason or f"{provider.name} could not issue the card."
            await settle(self._store, job, requests, Status.FAILED, failure)
            return
        await self._deliver_each(job, requests, result)

    async def _deliver_each(
        self, job: Job, requests: list[RewardRequest], result: OrderResult
    ) -> None:
        """Deliver every request its own part of the completed order."""
        # The id stored when the order was placed (a provider may name it differently later).
        stored_id = requests[0].provider_order_id or result.provider_order_id
        in_order = await self._store.requests_with_order(requests[0].provider, stored_id)
        for request in requests:
            own = own_part(request, in_order, result)
            if own is None:
                await settle(
                    self._store,
                    job,
                    [request],
                    Status.NEEDS_REVIEW,
                    f"{request.provider} completed order {result.provider_order_id} without a "
                    "card for this recipient.",
                )
            else:
                await self._delivery.deliver_and_finish(job, request, own)


def _look_again_later(request: RewardRequest, provider: Provider, *, placed_now: bool) -> RunLater:
    """When to read a pending order again: by the provider's schedule for an order pending
    as long (:meth:`Provider.next_poll`), or just after the time the provider sends a card it
    schedules itself (nothing to poll for before then)."""
    now = clock.now()
    scheduled = send_at(request)
    if scheduled is not None and scheduled > now:
        return RunLater(scheduled + _AFTER_SEND, waiting=False)
    if placed_now:  # this run placed it (the request was read before: no age to go by)
        pending_for = 0.0
    else:
        # Pending since its id was stored (``updated_at``: nothing else writes the request
        # while its order is pending). A time ahead of our clock (another process's clock, or
        # ours stepped back) says nothing of the age: look at it as at a long-pending one,
        # rather than as often as at a new one until the clocks agree.
        pending_for = (now - request.updated_at).total_seconds()
        if pending_for < 0:
            pending_for = math.inf
    return RunLater(now + timedelta(seconds=provider.next_poll(pending_for)))
