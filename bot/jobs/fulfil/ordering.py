"""Ordering, the first step of the ``fulfil`` job: claim → order (or look it up) → store the id.

Every send of an order is recorded before it leaves (:class:`DurableSendLog`), and the order id
is stored as soon as the provider gives it; from then on the order is only looked up, never
sent again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from bot import clock
from bot.domain import RewardRequest, Status, looks_like_email
from bot.jobs.fulfil.bodies import order_for, shared_order_for
from bot.jobs.fulfil.settle import settle
from bot.jobs.runner import RunLater
from bot.jobs.send_log import DurableSendLog
from bot.slack.gateway import SLACK_FAILURES, SlackGateway, UnknownUser
from bot.store import SYSTEM_ACTOR, Change, Job, Store
from providers.base import OrderResult, Provider, SendLog
from providers.errors import (
    OrderRefused,
    OutcomeUnknown,
    ProviderError,
    RateLimited,
    RetryableProviderError,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
# A lookup for an order of unknown outcome leaves out orders attributed this recently.
_ATTRIBUTED_WINDOW = timedelta(days=30)


class Ordering:
    """Claims approved requests and places their provider order, or reads it again."""

    def __init__(
        self,
        store: Store,
        gateway: SlackGateway,
        *,
        retry_base_delay: float,
        stall_notice_after: int,
        slack_attempts: int,
    ) -> None:
        self._store = store
        self._gateway = gateway
        self._retry_base_delay = retry_base_delay
        self._stall_notice_after = stall_notice_after
        self._slack_attempts = slack_attempts

    async def ready_to_order(
        self, job: Job, requests: list[RewardRequest], provider: Provider
    ) -> list[RewardRequest]:
        """Claim the approved requests; of those ordering, the ones the order is (or was)
        placed for. Before the order, someone the provider cannot email fails alone."""
        approved = [r for r in requests if r.status is Status.APPROVED]
        if approved:
            await self._claim(job, approved, provider)
        requests = await self._still(Status.ORDERING, requests)
        if not requests or requests[0].provider_order_id or not provider.needs_recipient_email:
            return requests
        unreachable = [r for r in requests if not _has_email(r)]
        if unreachable:
            await settle(
                self._store,
                job,
                unreachable,
                Status.FAILED,
                f"{provider.name} emails the card, but the recipient's Slack profile shows no "
                "email address (the app needs the users:read.email scope).",
            )
        return [r for r in requests if _has_email(r)]

    async def place_or_look_up(
        self, job: Job, requests: list[RewardRequest], provider: Provider
    ) -> OrderResult | None:
        """The order's state, placing it first if the provider has not given its id yet;
        ``None`` if the requests were settled because of the answer. A provider that is
        unavailable raises (the job is retried with backoff); a rate limit postpones it."""
        # Once an order id is known (a resumed request), never send the order again: look it up.
        order_id = requests[0].provider_order_id
        key = requests[0].order_key or requests[0].idempotency_key
        assert key is not None, "approval always stores the key"
        call, sends = await self._order_call(job, requests, provider, key)
        await self._store.hold(job)  # the fence before the provider call
        try:
            result = await call()
        except RateLimited as limited:
            raise RunLater(clock.now() + timedelta(seconds=limited.retry_after)) from None
        except RetryableProviderError as problem:
            await self._notice_stall(job, requests[0], problem)
            raise
        except OrderRefused as refusal:
            if order_id is not None:
                await self._order_exists_but(job, requests, order_id, refusal)
            elif sends is not None and sends.record.unsettled_since is not None:
                # An earlier send's answer was lost: a refusal now cannot say nothing was bought.
                await settle(
                    self._store,
                    job,
                    requests,
                    Status.NEEDS_REVIEW,
                    f"{provider.name} refused the order ({refusal.message}) after an earlier "
                    "attempt's answer was lost, so a card may have been bought. Check "
                    f"{provider.name}'s order list.",
                )
            else:
                reason = f"{provider.name} refused the order: {refusal.message}"
                await settle(self._store, job, requests, Status.FAILED, reason)
            return None
        except OutcomeUnknown as unknown:
            await settle(self._store, job, requests, Status.NEEDS_REVIEW, unknown.message)
            return None
        if order_id is None:
            await self._store.set_provider_order(
                [r.id for r in requests], result.provider_order_id, key, fence=job
            )
        return result

    async def _order_call(
        self, job: Job, requests: list[RewardRequest], provider: Provider, key: str
    ) -> tuple[Callable[[], Awaitable[OrderResult]], SendLog | None]:
        """The provider call that reads the order (its id is stored) or places it, with the
        log of its sends when it places it."""
        order_id = requests[0].provider_order_id
        if order_id is not None:
            return functools.partial(provider.get_order, order_id), None
        since = clock.now() - _ATTRIBUTED_WINDOW
        attributed = await self._store.attributed_orders(provider.name, since)
        sends = await DurableSendLog.open(self._store, job, provider.name, key, attributed)
        if requests[0].order_key is not None:
            shared = shared_order_for(requests)
            return functools.partial(provider.place_shared_order, shared, sends), sends
        return functools.partial(provider.place_order, order_for(requests[0]), sends), sends

    async def _notice_stall(
        self, job: Job, request: RewardRequest, problem: RetryableProviderError
    ) -> None:
        """Log a provider that is not answering; once, after a few attempts, say so in the
        request's thread."""
        log.warning("request %s: %s (attempt %s)", request.id, problem.message, job.attempts)
        if job.attempts != self._stall_notice_after:
            return
        try:
            await self._store.hold(job)
            await self._gateway.reply_in_thread(
                request,
                f"{request.provider} is not answering ({problem.message}). "
                "Still retrying; the card will not be ordered twice.",
            )
        except SLACK_FAILURES:
            log.warning("could not post the stall notice for request %s", request.id)

    async def _still(self, status: Status, requests: list[RewardRequest]) -> list[RewardRequest]:
        """The requests, read again, that are (still) in ``status``."""
        current = [await self._store.get(r.id) for r in requests]
        return [r for r in current if r.status is status]

    async def _order_exists_but(
        self,
        job: Job,
        requests: list[RewardRequest],
        provider_order_id: str,
        problem: ProviderError,
    ) -> None:
        """The order exists: a refusal to report on it is not a refusal of the order."""
        await settle(
            self._store,
            job,
            requests,
            Status.NEEDS_REVIEW,
            f"{requests[0].provider} accepted order {provider_order_id} but then answered: "
            f"{problem.message}",
        )

    async def _claim(self, job: Job, requests: list[RewardRequest], provider: Provider) -> None:
        """``approved → ordering`` for all of one order's requests at once, capturing each
        recipient so every retry of the order (even after a restart or a profile change) sends
        the same body. Whether the provider schedules the cards itself is fixed here too, once
        for the whole order, for the same reason: a job claimed before the delivery time is one
        the approval gave the provider to schedule (one the bot holds runs at that time). A
        recipient who left the workspace fails alone."""
        cancel_before = None
        when = requests[0].deliver_at
        if provider.schedules_natively and when and when > clock.now():
            cancel_before = (when - provider.cancel_cutoff).isoformat()
        claims = []
        for request in requests:
            try:
                recipient = await self._slack_with_retries(
                    functools.partial(self._gateway.user, request.recipient_id)
                )
            except UnknownUser:
                reason = "The recipient is no longer in the workspace; nothing was ordered."
                await self._store.transition(
                    request.id,
                    Status.APPROVED,
                    Status.FAILED,
                    SYSTEM_ACTOR,
                    detail={"reason": reason},
                    fence=job,
                    failure_reason=reason,
                )
                continue
            claims.append(
                Change(
                    request.id,
                    Status.APPROVED,
                    Status.ORDERING,
                    columns={
                        "recipient_name": recipient.display_name,
                        "recipient_email": recipient.email,
                        "cancel_before": cancel_before,
                    },
                )
            )
        if claims:
            # All or none: a cancellation racing the claim leaves nothing half ordered.
            await self._store.transition_all(claims, SYSTEM_ACTOR, fence=job)

    async def _slack_with_retries(self, call: Callable[[], Awaitable[T]]) -> T:
        """A Slack call that a brief outage should not break: a few tries with backoff."""
        for attempt in range(1, self._slack_attempts + 1):
            try:
                return await call()
            except SLACK_FAILURES as exc:
                if attempt == self._slack_attempts:
                    raise
                log.warning("Slack call failed (attempt %s): %r", attempt, exc)
                await asyncio.sleep(self._retry_base_delay * attempt)
        raise AssertionError("unreachable")


def _has_email(request: RewardRequest) -> bool:
    return looks_like_email((request.recipient_email or "").strip())
