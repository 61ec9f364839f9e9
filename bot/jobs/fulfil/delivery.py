"""Delivery, the last step of the ``fulfil`` job: start → DM → settle, exactly once.

The start of a delivery is recorded (:meth:`Store.start_delivery`) before its DM, under the
job's claim, so a run after a crash or a lost claim checks the recipient's DM history before
sending the card again.
"""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.errors import SlackApiError

from bot.domain import RewardRequest, Status
from bot.jobs.fulfil.settle import settle
from bot.slack.gateway import SLACK_FAILURES, SlackGateway
from bot.slack.web_client import slack_error_code
from bot.store import SYSTEM_ACTOR, Job, LeaseLost, Store
from providers.base import OrderResult

log = logging.getLogger(__name__)

# Slack errors that mean "try again later", not "this message can never be sent".
_SLACK_TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class Delivery:
    """DMs a recipient their part of a completed order and records the request fulfilled."""

    def __init__(
        self,
        store: Store,
        gateway: SlackGateway,
        *,
        retry_base_delay: float,
        slack_attempts: int,
        delivery_in_flight: float,
    ) -> None:
        """``delivery_in_flight``: the longest a delivery DM another run started may still be
        on its way to Slack (its Web API call's timeout, with a margin)."""
        self._store = store
        self._gateway = gateway
        self._retry_base_delay = retry_base_delay
        self._slack_attempts = slack_attempts
        self._delivery_in_flight = delivery_in_flight

    async def deliver_and_finish(
        self, job: Job, request: RewardRequest, result: OrderResult
    ) -> None:
        """Deliver the request's own part of a completed order and record it fulfilled."""
        if result.redemption is None and not result.delivered_by_provider:
            await settle(
                self._store,
                job,
                [request],
                Status.NEEDS_REVIEW,
                f"{request.provider} completed order {result.provider_order_id} without "
                "usable redemption details for this recipient.",
            )
            return
        if not await self._deliver_once(job, request, result):
            return
        charged = result.charged
        await self._store.transition(
            request.id,
            Status.ORDERING,
            Status.FULFILLED,
            SYSTEM_ACTOR,
            detail={"provider_order_id": result.provider_order_id},
            fence=job,
            charged_amount=str(charged.amount) if charged else None,
            charged_currency=charged.currency if charged else None,
        )

    async def _deliver_once(self, job: Job, request: RewardRequest, result: OrderResult) -> bool:
        """DM the card exactly once; False if Slack refused and the request was parked.

        The start of the delivery is recorded first, under this claim. If another run started
        it (a crash, or a run that lost its claim and may still be sending), its DM may be on
        its way: this run waits out the time that DM could take (on its own monotonic clock,
        never a wall clock), then looks for it in the recipient's DM history before taking
        the delivery over. Any attempt after the first, in this run, looks first as well."""
        start = await self._store.start_delivery(request.id, job)
        if start.other_claim is not None:
            await asyncio.sleep(self._delivery_in_flight)
            await self._store.hold(job)
            if await self._gateway.was_delivered(request, since=start.started_at):
                log.info("request %s: the delivery DM had already been sent", request.id)
                return True
            if not await self._store.take_over_delivery(request.id, job, start.other_claim):
                raise LeaseLost(job)
        for attempt in range(1, self._slack_attempts + 1):
            if attempt > 1 and await self._gateway.was_delivered(request, since=start.started_at):
                log.info("request %s: the delivery DM had already been sent", request.id)
                return True
            await self._store.hold(job)  # the fence right before the DM
            try:
                await self._gateway.deliver(request, result.redemption)
                return True
            except SlackApiError as refusal:
                error = slack_error_code(refusal)
                # No code at all: not Slack's answer (a proxy's 5xx), so not a refusal either.
                if error is not None and error not in _SLACK_TRANSIENT_ERRORS:
                    # Slack answered no (the recipient cannot be messaged): waiting won't help.
                    await settle(
                        self._store,
                        job,
                        [request],
                        Status.NEEDS_REVIEW,
                        f"The gift card was issued (order {result.provider_order_id}) but "
                        f"Slack refused to deliver it ({error}); it must be sent by hand.",
                    )
                    return False
                if attempt == self._slack_attempts:
                    raise
            except SLACK_FAILURES:
                if attempt == self._slack_attempts:
                    raise  # the job is retried later, starting with the same check
            await asyncio.sleep(self._retry_base_delay * attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")
