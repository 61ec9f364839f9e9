"""The ``fulfil`` job: approved requests through ordering, polling and delivery.

A job carries one provider order: one request's, or one shared by several requests of a bulk
reward. Each step is persisted before the next side effect, so the job can be run again after
a crash at any point, by this process or another: the idempotency key stored at approval makes
a replayed order the same order, every send of it is recorded first (``order_sends``), a
stored order id is looked up instead of re-sent, and each recipient's DM is checked before
their delivery is sent again. Every side effect is fenced by the job's claim: a run that lost
it stops (:class:`~bot.store.LeaseLost`) before its next provider call, DM or settlement.

Nothing waits in the job: a pending order, a provider that is down and a rate limit all put
the job back to run later (:class:`~bot.jobs.runner.RunLater` or a retry with backoff), so one stuck
order never holds a slot that another reward needs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from slack_sdk.errors import SlackApiError

from bot import clock
from bot.domain import RewardRequest, Status, allocate, looks_like_email
from bot.jobs.runner import RunLater
from bot.jobs.send_log import DurableSendLog
from bot.slack.gateway import SLACK_FAILURES, SlackGateway, UnknownUser
from bot.store import SYSTEM_ACTOR, Change, Job, LeaseLost, Store
from providers.base import (
    IssuedCard,
    OrderLine,
    OrderRequest,
    OrderResult,
    OrderState,
    Provider,
    Recipient,
    SendLog,
    SharedOrder,
)
from providers.errors import (
    OrderRefused,
    OutcomeUnknown,
    ProviderError,
    RateLimited,
    RetryableProviderError,
)

log = logging.getLogger(__name__)

# Slack errors that mean "try again later", not "this message can never be sent".
_SLACK_TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
T = TypeVar("T")
# A card the provider schedules itself is looked at again this long after its send time.
_AFTER_SEND = timedelta(minutes=1)
# A lookup for an order of unknown outcome leaves out orders attributed this recently.
_ATTRIBUTED_WINDOW = timedelta(days=30)


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
        self._gateway = gateway
        self._retry_base_delay = retry_base_delay
        self._stall_notice_after = stall_notice_after
        self._slack_attempts = slack_attempts
        self._delivery_in_flight = delivery_in_flight

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
        requests = await self._ready_to_order(job, requests, provider)
        result = await self._place_or_look_up(job, requests, provider) if requests else None
        if result is None:
            return
        if result.state is OrderState.PENDING:
            send_at = _send_at(requests[0])
            if send_at is not None and send_at > clock.now():
                # The provider sends it then; there is nothing to poll for until that time.
                raise RunLater(send_at + _AFTER_SEND, waiting=False)
            raise RunLater(clock.now() + timedelta(seconds=provider.poll_interval))
        if result.state is OrderState.FAILED:
            failure = result.failure_reason or f"{provider.name} could not issue the card."
            await self._settle(job, requests, Status.FAILED, failure)
            return
        # The id stored when the order was placed (a provider may name it differently later).
        stored_id = requests[0].provider_order_id or result.provider_order_id
        in_order = await self._store.requests_with_order(requests[0].provider, stored_id)
        for request in requests:
            own = own_part(request, in_order, result)
            if own is None:
                await self._settle(
                    job,
                    [request],
                    Status.NEEDS_REVIEW,
                    f"{request.provider} completed order {result.provider_order_id} without a "
                    "card for this recipient.",
                )
            else:
                await self._deliver_and_finish(job, request, own)

    async def _ready_to_order(
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
            await self._settle(
                job,
                unreachable,
                Status.FAILED,
                f"{provider.name} emails the card, but the recipient's Slack profile shows no "
                "email address (the app needs the users:read.email scope).",
            )
        return [r for r in requests if _has_email(r)]

    async def _place_or_look_up(
        self, job: Job, requests: list[RewardRequest], provider: Provider
    ) -> OrderResult | None:
        """The order's state, placing it first if the provider has not given its id yet;
        ``None`` if the requests were settled because of the answer. A provider that is
        unavailable raises (the job is retried with backoff); a rate limit postpones it."""
        # Once an order id is known (a resumed request), never send the order again: look it up.
        order_id = requests[0].provider_order_id
        key = requests[0].order_key or requests[0].idempotency_key
        assert key is not None, "approval always stores the key"
        sends: SendLog | None = None
        call: Callable[[], Awaitable[OrderResult]]
        if order_id is not None:
            call = functools.partial(provider.get_order, order_id)
        else:
            since = clock.now() - _ATTRIBUTED_WINDOW
            attributed = await self._store.attributed_orders(provider.name, since)
            sends = await DurableSendLog.open(self._store, job, provider.name, key, attributed)
            if requests[0].order_key is not None:
                call = functools.partial(
                    provider.place_shared_order, _shared_order_for(requests), sends
                )
            else:
                call = functools.partial(provider.place_order, _order_for(requests[0]), sends)
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
                await self._settle(
                    job,
                    requests,
                    Status.NEEDS_REVIEW,
                    f"{provider.name} refused the order ({refusal.message}) after an earlier "
                    "attempt's answer was lost, so a card may have been bought. Check "
                    f"{provider.name}'s order list.",
                )
            else:
                reason = f"{provider.name} refused the order: {refusal.message}"
                await self._settle(job, requests, Status.FAILED, reason)
            return None
        except OutcomeUnknown as unknown:
            await self._settle(job, requests, Status.NEEDS_REVIEW, unknown.message)
            return None
        if order_id is None:
            await self._store.set_provider_order(
                [r.id for r in requests], result.provider_order_id, key, fence=job
            )
        return result

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
        await self._settle(
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

    async def _deliver_and_finish(
        self, job: Job, request: RewardRequest, result: OrderResult
    ) -> None:
        """Deliver the request's own part of a completed order and record it fulfilled."""
        if result.redemption is None and not result.delivered_by_provider:
            await self._settle(
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
                error = refusal.response.get("error")
                if error not in _SLACK_TRANSIENT_ERRORS:
                    # Slack answered no (the recipient cannot be messaged): waiting won't help.
                    await self._settle(
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

    async def _settle(
        self, job: Job, requests: list[RewardRequest], status: Status, reason: str
    ) -> None:
        """End the order of ``requests`` (all of them at once: they share it) without a
        delivery; the transitions queue their announcements."""
        settled = await self._store.transition_all(
            [
                Change(
                    r.id,
                    Status.ORDERING,
                    status,
                    {"reason": reason},
                    columns={"failure_reason": reason},
                )
                for r in requests
            ],
            SYSTEM_ACTOR,
            fence=job,
        )
        if not settled:
            # Only a cancellation moves an ordering request meanwhile, and it moves them all.
            log.info("requests %s had already moved on: not %s", [r.id for r in requests], status)


def _order_for(request: RewardRequest) -> OrderRequest:
    """The order body: built only from stored state, so it is identical on every attempt."""
    assert request.idempotency_key is not None, "approval always stores the key"
    return OrderRequest(
        idempotency_key=request.idempotency_key,
        product_id=request.product_id,
        face_value=request.face_value,
        reference=f"rewardbot-{request.id}",
        recipient=_recipient(request),
        message=request.message,
        send_at=_send_at(request),
    )


def _shared_order_for(requests: list[RewardRequest]) -> SharedOrder:
    """One order for several requests of a batch, from stored state like :func:`_order_for`.
    The same requests are in it on every attempt, in the same order: they are claimed
    together, and until the order id is stored they only leave it together (settled in one
    transaction, reviewed together: see ``Rewards.order_again``)."""
    first = requests[0]
    assert first.order_key is not None, "approval stores a shared order's key"
    return SharedOrder(
        idempotency_key=first.order_key,
        product_id=first.product_id,
        reference=f"rewardbot-{first.order_owner or first.id}",
        message=first.message,
        send_at=_send_at(first),
        lines=tuple(OrderLine(recipient=_recipient(r), face_value=r.face_value) for r in requests),
    )


def _recipient(request: RewardRequest) -> Recipient:
    return Recipient(
        slack_user_id=request.recipient_id,
        name=request.recipient_name or request.recipient_id,
        email=request.recipient_email,
    )


def _has_email(request: RewardRequest) -> bool:
    return looks_like_email((request.recipient_email or "").strip())


def _send_at(request: RewardRequest) -> datetime | None:
    # Set at the claim when the provider schedules the card itself.
    return request.deliver_at if request.cancel_before is not None else None


def own_part(
    request: RewardRequest, in_order: list[RewardRequest], result: OrderResult
) -> OrderResult | None:
    """``request``'s part of a completed order: its card (its own, in a shared order) and its
    share of the charge, split over ``in_order`` (every request the order was placed for) in
    proportion to their face values. ``None`` if a shared order lists no card for it."""
    charged = None
    if result.charged is not None and in_order:
        shares = allocate(result.charged, [r.face_value.amount for r in in_order])
        charged = dict(zip([r.id for r in in_order], shares, strict=True)).get(request.id)
    if request.order_key is None:
        return result.model_copy(update={"charged": charged})
    card = cards_by_request(in_order, result.cards).get(request.id)
    if card is None:
        return None
    # Only this recipient's card: the others' links stay out of their part.
    return result.model_copy(
        update={"redemption": card.redemption, "charged": charged, "cards": (card,)}
    )


def cards_by_request(
    requests: list[RewardRequest], cards: Sequence[IssuedCard]
) -> dict[int, IssuedCard]:
    """Whose is each card a shared order lists. By address where the provider lists the one
    it emailed each card to; otherwise by face value, as cards of one product and face value
    are interchangeable: the k-th request (by id) gets the k-th card (by the provider's card
    id), so every reading of the order, a resend's included, gives everyone the same card."""
    by_email: dict[str, list[IssuedCard]] = {}
    by_face: dict[Decimal | None, list[IssuedCard]] = {}
    for card in sorted(cards, key=lambda c: c.card_id):
        if card.email:
            by_email.setdefault(card.email, []).append(card)
        else:
            by_face.setdefault(card.face_value, []).append(card)
    owned: dict[int, IssuedCard] = {}
    for request in sorted(requests, key=lambda r: r.id):
        email = (request.recipient_email or "").strip().lower()
        # Each card goes to one request only, even if two share an address.
        pool = by_email.get(email) or by_face.get(request.face_value.amount)
        if pool:
            owned[request.id] = pool.pop(0)
    return owned
