"""The ``fulfil`` job: approved requests through ordering, polling and delivery.

A job carries one provider order: one request's, or one shared by several requests of a bulk
reward. Each step is persisted before the next side effect, so the job can be run again after
a crash at any point: the idempotency key stored at approval makes a replayed order the same
order, a stored order id is looked up instead of re-sent, and each recipient's DM is checked
before their delivery is sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from slack_sdk.errors import SlackApiError

from bot.domain import RewardRequest, Status, allocate, looks_like_email
from bot.jobs import RunLater
from bot.slack_gateway import SLACK_FAILURES, SlackGateway, UnknownUser
from bot.store import SYSTEM_ACTOR, Change, Job, Store
from providers.base import (
    IssuedCard,
    OrderLine,
    OrderRequest,
    OrderResult,
    OrderState,
    Provider,
    Recipient,
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
_MAX_WAKEUPS = 10_000
# A card the provider schedules itself is looked at again this long after its send time.
_AFTER_SEND = timedelta(minutes=1)


class Fulfillment:
    """The ``fulfil`` job: carries approved requests to delivery, resuming where it stopped.

    Each step is persisted before the next side effect: the order id as soon as the provider
    gives it, the start of the delivery before the DM. Run again after a crash, the job looks
    the order up instead of re-sending it, and checks the recipient's DM before re-sending it.
    An exception leaves the request as it is and the job is retried later.
    """

    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        gateway: SlackGateway,
        *,
        retry_base_delay: float = 1.0,
        retry_max_delay: float = 60.0,
        stall_notice_after: int = 5,
        slack_attempts: int = 3,
    ) -> None:
        self._store = store
        self._providers = providers
        self._gateway = gateway
        self._retry_base_delay = retry_base_delay
        self._retry_max_delay = retry_max_delay
        self._stall_notice_after = stall_notice_after
        self._slack_attempts = slack_attempts
        self._wakeups: dict[tuple[str, str], asyncio.Event] = {}

    async def run(self, job: Job) -> None:
        """Carry every unfinished order the job's request owns: its own, and the one it shares
        with others of its batch (see :meth:`Store.orders_owned_by`)."""
        postponed: list[datetime] = []
        for order in await self._store.orders_owned_by(job.request_id):
            try:
                await self._fulfil(order)
            except RunLater as wait:
                postponed.append(wait.until)
        if postponed:
            raise RunLater(min(postponed))

    def order_changed(self, provider: str, provider_order_id: str) -> None:
        """A webhook said the order changed: stop waiting for the next poll."""
        key = (provider, provider_order_id)
        # The event may not exist yet (the webhook beat place_order's answer): create it set.
        # Bounded, because the provider also reports orders that are not ours.
        if key in self._wakeups or len(self._wakeups) < _MAX_WAKEUPS:
            self._wakeups.setdefault(key, asyncio.Event()).set()

    async def _fulfil(self, requests: list[RewardRequest]) -> None:
        """One provider order, for one request or (shared) for several of a batch."""
        provider = self._providers.get(requests[0].provider)
        if provider is None:
            # Kept open and retried with backoff: re-enabling the provider resumes it.
            raise RuntimeError(
                f"request {requests[0].id} needs provider {requests[0].provider!r}, which is "
                "not enabled"
            )
        requests = await self._ready_to_order(requests, provider)
        result = await self._place_or_look_up(requests, provider) if requests else None
        if result is None:
            return
        send_at = _send_at(requests[0])
        waiting_for_send = send_at is not None and send_at > datetime.now(UTC)
        if waiting_for_send and result.state is OrderState.PENDING:
            assert send_at is not None
            # The provider sends it then; there is nothing to poll for until that time.
            raise RunLater(send_at + _AFTER_SEND)
        try:
            result = await self._until_settled(requests[0], provider, result)
        except (OrderRefused, OutcomeUnknown) as problem:
            await self._order_exists_but(requests, result.provider_order_id, problem)
            return
        if result.state is OrderState.FAILED:
            failure = result.failure_reason or f"{provider.name} could not issue the card."
            await self._settle(requests, Status.FAILED, failure)
            return
        in_order = await self._store.requests_with_order(
            requests[0].provider, result.provider_order_id
        )
        for request in requests:
            own = own_part(request, in_order, result)
            if own is None:
                await self._settle(
                    [request],
                    Status.NEEDS_REVIEW,
                    f"{request.provider} completed order {result.provider_order_id} without a "
                    "card for this recipient.",
                )
            else:
                await self._deliver_and_finish(request, own)

    async def _ready_to_order(
        self, requests: list[RewardRequest], provider: Provider
    ) -> list[RewardRequest]:
        """Claim the approved requests; of those ordering, the ones the order is (or was)
        placed for. Before the order, someone the provider cannot email fails alone."""
        approved = [r for r in requests if r.status is Status.APPROVED]
        if approved:
            await self._claim(approved, provider)
        requests = await self._still(Status.ORDERING, requests)
        if not requests or requests[0].provider_order_id or not provider.needs_recipient_email:
            return requests
        unreachable = [r for r in requests if not _has_email(r)]
        if unreachable:
            await self._settle(
                unreachable,
                Status.FAILED,
                f"{provider.name} emails the card, but the recipient's Slack profile shows no "
                "email address (the app needs the users:read.email scope).",
            )
        return [r for r in requests if _has_email(r)]

    async def _place_or_look_up(
        self, requests: list[RewardRequest], provider: Provider
    ) -> OrderResult | None:
        """The order's state, placing it first if the provider has not given its id yet;
        ``None`` if the requests were settled because of the answer."""
        # Once an order id is known (a resumed request), never send the order again: look it up.
        # Replaying the key is safe only within the provider's idempotency window.
        order_id = requests[0].provider_order_id
        send: Callable[[], Awaitable[OrderResult]]
        if order_id is not None:
            send = functools.partial(provider.get_order, order_id)
        elif requests[0].order_key is not None:
            send = functools.partial(provider.place_shared_order, _shared_order_for(requests))
        else:
            send = functools.partial(provider.place_order, _order_for(requests[0]))
        try:
            result = await self._with_retries(requests[0], send)
        except OrderRefused as refusal:
            if order_id is None:
                reason = f"{provider.name} refused the order: {refusal.message}"
                await self._settle(requests, Status.FAILED, reason)
            else:
                await self._order_exists_but(requests, order_id, refusal)
            return None
        except OutcomeUnknown as unknown:
            await self._settle(requests, Status.NEEDS_REVIEW, unknown.message)
            return None
        if order_id != result.provider_order_id:
            await self._store.set_provider_order([r.id for r in requests], result.provider_order_id)
        return result

    async def _still(self, status: Status, requests: list[RewardRequest]) -> list[RewardRequest]:
        """The requests, read again, that are (still) in ``status``."""
        current = [await self._store.get(r.id) for r in requests]
        return [r for r in current if r.status is status]

    async def _order_exists_but(
        self, requests: list[RewardRequest], provider_order_id: str, problem: ProviderError
    ) -> None:
        """The order exists: a refusal to report on it is not a refusal of the order."""
        await self._settle(
            requests,
            Status.NEEDS_REVIEW,
            f"{requests[0].provider} accepted order {provider_order_id} but then answered: "
            f"{problem.message}",
        )

    async def _claim(self, requests: list[RewardRequest], provider: Provider) -> None:
        """``approved → ordering`` for all of one order's requests at once, capturing each
        recipient so every retry of the order (even after a restart or a profile change) sends
        the same body. Whether the provider schedules the cards itself is fixed here too, once
        for the whole order, for the same reason: a job claimed before the delivery time is one
        the approval gave the provider to schedule (one the bot holds runs at that time). A
        recipient who left the workspace fails alone."""
        cancel_before = None
        when = requests[0].deliver_at
        if provider.schedules_natively and when and when > datetime.now(UTC):
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
            await self._store.transition_all(claims, SYSTEM_ACTOR)

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

    async def _until_settled(
        self, request: RewardRequest, provider: Provider, result: OrderResult
    ) -> OrderResult:
        """Poll (or wake on a webhook) until the order is no longer pending."""
        key = (request.provider, result.provider_order_id)
        wakeup = self._wakeups.setdefault(key, asyncio.Event())
        try:
            while result.state is OrderState.PENDING:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), provider.poll_interval)
                wakeup.clear()
                result = await self._with_retries(
                    request, functools.partial(provider.get_order, result.provider_order_id)
                )
        finally:
            self._wakeups.pop(key, None)
        return result

    async def _deliver_and_finish(self, request: RewardRequest, result: OrderResult) -> None:
        """Deliver the request's own part of a completed order and record it fulfilled."""
        if result.redemption is None and not result.delivered_by_provider:
            await self._settle(
                [request],
                Status.NEEDS_REVIEW,
                f"{request.provider} completed order {result.provider_order_id} without "
                "usable redemption details for this recipient.",
            )
            return
        if not await self._deliver_once(request, result):
            return
        charged = result.charged
        await self._store.transition(
            request.id,
            Status.ORDERING,
            Status.FULFILLED,
            SYSTEM_ACTOR,
            detail={"provider_order_id": result.provider_order_id},
            charged_amount=str(charged.amount) if charged else None,
            charged_currency=charged.currency if charged else None,
        )

    async def _deliver_once(self, request: RewardRequest, result: OrderResult) -> bool:
        """DM the card exactly once; False if Slack refused and the request was parked.

        Before any second attempt (a retry after a timeout, or the job run again after a
        crash) the recipient's DM is searched for the first one: a request whose answer was
        lost may still have been posted."""
        started = request.delivery_started_at
        if started is None:
            started = await self._store.mark_delivery_started(request.id)
        for attempt in range(1, self._slack_attempts + 1):
            maybe_sent = attempt > 1 or request.delivery_started_at is not None
            if maybe_sent and await self._gateway.was_delivered(request, since=started):
                log.info("request %s: the delivery DM had already been sent", request.id)
                return True
            try:
                await self._gateway.deliver(request, result.redemption)
                return True
            except SlackApiError as refusal:
                error = refusal.response.get("error")
                if error not in _SLACK_TRANSIENT_ERRORS:
                    # Slack answered no (the recipient cannot be messaged): waiting won't help.
                    await self._settle(
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

    async def _settle(self, requests: list[RewardRequest], status: Status, reason: str) -> None:
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
        )
        if not settled:
            # Only a cancellation moves an ordering request meanwhile, and it moves them all.
            log.info("requests %s had already moved on: not %s", [r.id for r in requests], status)

    async def _with_retries(
        self, request: RewardRequest, call: Callable[[], Awaitable[OrderResult]]
    ) -> OrderResult:
        """Retry what may be retried, forever, with capped backoff: the idempotency key makes
        every retry the same order, and giving up could strand a card that was issued."""
        attempt = 0
        while True:
            try:
                return await call()
            except RateLimited as exc:
                delay = exc.retry_after
                problem = exc.message
            except RetryableProviderError as exc:
                delay = min(self._retry_base_delay * 2**attempt, self._retry_max_delay)
                problem = exc.message
            attempt += 1
            log.warning(
                "request %s: %s (attempt %s, retrying in %.1fs)",
                request.id,
                problem,
                attempt,
                delay,
            )
            if attempt == self._stall_notice_after:
                try:
                    await self._gateway.reply_in_thread(
                        request,
                        f"{request.provider} is not answering ({problem}). "
                        "Still retrying; the card will not be ordered twice.",
                    )
                except SLACK_FAILURES:
                    log.warning("could not post the stall notice for request %s", request.id)
            await asyncio.sleep(delay)


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
