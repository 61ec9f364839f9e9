"""Contract tests: the real Giftronaut adapter over real HTTP against the fake Giftronaut API.

Calls for one idempotency key share one :class:`SendLog` (it stands in for the bot's database);
a "restart" is a fresh adapter given a log that carries the record the database would hold.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from bot.domain import Money
from providers.base import (
    OrderLine,
    OrderRequest,
    OrderResult,
    OrderState,
    Recipient,
    SendLog,
    SendRecord,
    SharedOrder,
)
from providers.errors import (
    AuthenticationFailed,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidProduct,
    OrderDeclined,
    OutcomeUnknown,
    OutOfStock,
    ProviderConfigError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from providers.giftronaut import (
    PRODUCTION_URL,
    GiftronautProvider,
    OrderNotCancelable,
    ScheduledSend,
    giftronaut_key,
)
from providers.http import RetryPolicy
from tests.fakes import Tripwire, serve
from tests.fakes.giftronaut import CLIENT_ID, CLIENT_SECRET, GiftronautState
from tests.fakes.giftronaut import app as giftronaut_app
from tests.providers.sending import ClockedSendLog, RefusePosts, WatchedSendLog, unsettled

KEY = "rewardbot-7-0123456789abcdef0123456789abcdef"


class Clock:
    """The adapter's monotonic clock, movable by tests."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


@dataclass
class Env:
    state: GiftronautState
    url: str
    http: httpx.AsyncClient
    clock: Clock
    tripwire: Tripwire

    def adapter(
        self, http: httpx.AsyncClient | None = None, **overrides: Any
    ) -> GiftronautProvider:
        options: dict[str, Any] = {
            "client_id": CLIENT_ID,
            "client_secret": SecretStr(CLIENT_SECRET),
            "base_url": self.url,
            "retry": RetryPolicy(attempts=3, base_delay=0.01),
            "poll_interval": 0.01,
            "clock": self.clock,
        }
        return GiftronautProvider(http or self.http, **(options | overrides))


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    state = GiftronautState()
    app, tripwire = giftronaut_app(state), Tripwire()
    app.middlewares.append(tripwire.middleware)
    async with serve(app) as url, httpx.AsyncClient() as http:
        yield Env(state, url, http, Clock(), tripwire)


@pytest.fixture
def gt(env: Env) -> GiftronautProvider:
    return env.adapter()


def order(
    *,
    key: str = KEY,
    product_id: str = "branded:10042",
    amount: str = "50",
    currency: str = "USD",
    email: str | None = "jane@example.com",
    message: str = "For shipping the release",
) -> OrderRequest:
    return OrderRequest(
        idempotency_key=key,
        product_id=product_id,
        face_value=Money(amount=Decimal(amount), currency=currency),
        reference="rewardbot-7",
        recipient=Recipient(slack_user_id="U0JANE", name="Jane Doe", email=email),
        message=message,
    )


def shared_order(*people: tuple[str, str, str | None]) -> SharedOrder:
    """One order for several people: (name, amount, email) each."""
    people = people or (("Jane", "50", "jane@example.com"), ("Omar", "25", "omar@example.com"))
    return SharedOrder(
        idempotency_key=KEY,
        product_id="branded:10042",
        reference="rewardbot-7",
        message="For shipping the release",
        lines=tuple(
            OrderLine(
                recipient=Recipient(slack_user_id=f"U{name.upper()}", name=name, email=email),
                face_value=Money(amount=Decimal(amount), currency="USD"),
            )
            for name, amount, email in people
        ),
    )


async def settle(gt: GiftronautProvider, result: OrderResult) -> OrderResult:
    for _ in range(20):
        if result.state is not OrderState.PENDING:
            return result
        result = await gt.get_order(result.provider_order_id)
    raise AssertionError("the order never settled")


# -- catalog ------------------------------------------------------------------------------------


@pytest.mark.parametrize("wrapper", ["data", "products", "items", "bare"])
async def test_catalog_is_parsed_into_products_with_exact_amounts(
    env: Env, gt: GiftronautProvider, wrapper: str
) -> None:
    env.state.catalog_wrapper = wrapper
    products = {p.product_id: p for p in await gt.list_products()}

    assert set(products) == {"branded:10042", "branded:20077", "branded:30011", "choice:55"}
    amazon = products["branded:10042"]
    assert (amazon.provider, amazon.name, amazon.currency) == ("giftronaut", "Amazon", "USD")
    assert amazon.denominations == (Decimal(25), Decimal(50), Decimal(100))
    starbucks = products["branded:20077"]
    assert (starbucks.currency, starbucks.min_value, starbucks.max_value) == (
        "GBP",
        Decimal(5),
        Decimal("250.5"),
    )
    assert isinstance(starbucks.max_value, Decimal)
    assert products["branded:30011"].currency == "JPY"
    choice = products["choice:55"]
    assert choice.name == "Global Choice (choice card)"
    assert (choice.min_value, choice.max_value) == (Decimal(5), Decimal(500))
    assert choice.key == "giftronaut:choice:55"


async def test_catalog_skips_items_it_cannot_read_and_keeps_the_rest(
    env: Env, gt: GiftronautProvider
) -> None:
    env.state.branded.append({"brandName": "No id", "currency": "USD", "prices": [5]})
    env.state.branded.append({"productId": "X", "currency": "usd!", "prices": [5]})
    env.state.choice.append({"productId": 77, "name": "Numeric id", "minAmount": 1, "maxAmount": 9})
    ids = {p.product_id for p in await gt.list_products()}
    assert "branded:99999" not in ids and "branded:X" not in ids
    assert "choice:77" in ids  # numeric ids are read as strings; choice cards default to USD


@pytest.mark.parametrize("currency", ["USS", "XAU"])
async def test_catalog_skips_an_item_in_a_code_that_is_not_money(
    env: Env, gt: GiftronautProvider, currency: str, caplog: pytest.LogCaptureFixture
) -> None:
    env.state.branded.append({"productId": "GOLD", "currency": currency, "prices": [5]})
    ids = {p.product_id for p in await gt.list_products()}
    assert "branded:GOLD" not in ids
    assert "branded:30011" in ids
    assert "skipped branded catalog item 'GOLD'" in caplog.text


async def test_catalog_outage_is_retryable(env: Env, gt: GiftronautProvider) -> None:
    env.state.fail_next_with(503, times=3)
    with pytest.raises(ProviderUnavailable):
        await gt.list_products()


# -- orders -------------------------------------------------------------------------------------


async def test_branded_order_sends_the_documented_body_and_completes_by_email(
    env: Env, gt: GiftronautProvider
) -> None:
    placed = await gt.place_order(order(amount="50"))
    assert placed.state is OrderState.PENDING

    [created] = env.state.created_orders
    assert created.card_type == "BRANDED_CARD" and created.product_id == "10042"
    [seen] = env.state.seen("POST", "/api/v1/orders/branded-cards")
    assert seen.body == {
        "idempotencyKey": KEY,
        "productId": "10042",
        "sendTiming": {"type": "IMMEDIATE"},
        "emailSetting": {
            "senderName": "Rewardbot",
            "subject": "You have received a gift card from Rewardbot",
            "message": "For shipping the release",
        },
        "recipients": [{"email": "jane@example.com", "amount": 50}],
        "refundOption": False,
    }
    assert seen.headers["X-Idempotency-Key"] == KEY
    assert seen.headers["Authorization"].startswith("Bearer eyJ")
    assert seen.headers["X-Request-Id"]

    done = await settle(gt, placed)
    assert env.state.orders[done.provider_order_id].status == "COMPLETE"
    assert done.state is OrderState.COMPLETED
    assert done.provider_order_id == created.order_id
    assert done.delivered_by_provider is True
    assert done.redemption is None
    assert done.charged == Money(amount=Decimal("50.00"), currency="USD")
    # The reward link exists at Giftronaut but never enters the adapter's answer.
    assert created.reward_link is not None
    assert created.reward_link not in repr(done)


async def test_a_shared_order_is_one_order_with_a_recipient_each(
    env: Env, gt: GiftronautProvider
) -> None:
    env.state.drop_next_after_processing()  # the first answer is lost: still one order
    result = await settle(gt, await gt.place_shared_order(shared_order()))
    [created] = env.state.created_orders
    assert created.body["recipients"] == [
        {"email": "jane@example.com", "amount": 50},
        {"email": "omar@example.com", "amount": 25},
    ]
    assert result.state is OrderState.COMPLETED and result.delivered_by_provider
    assert {c.email for c in result.cards} == {"jane@example.com", "omar@example.com"}
    assert result.charged == Money(amount=Decimal("75.00"), currency="USD")


async def test_undocumented_fields_in_another_shape_never_make_a_placed_order_unreadable(
    env: Env, gt: GiftronautProvider
) -> None:
    def reshape(body: dict[str, Any]) -> dict[str, Any]:
        odd = [{"email": 42}, *body["recipients"][1:]]  # one address not a string
        return {**body, "totalCost": float(body["totalCost"]["amount"]), "recipients": odd}

    env.state.reshape = reshape
    result = await settle(gt, await gt.place_shared_order(shared_order()))
    assert result.state is OrderState.COMPLETED and result.charged is None
    assert [c.email for c in result.cards] == ["omar@example.com"]
    env.state.reshape = lambda body: {**body, "recipients": "two cards"}
    unlisted = await gt.get_order(result.provider_order_id)
    assert unlisted.state is OrderState.COMPLETED and unlisted.cards == ()


async def test_a_shared_order_completed_without_a_card_for_someone_says_so(
    env: Env, gt: GiftronautProvider
) -> None:
    env.state.unissued.add("omar@example.com")
    result = await settle(gt, await gt.place_shared_order(shared_order()))
    assert [c.email for c in result.cards] == ["jane@example.com"]


async def test_a_shared_order_with_someone_without_email_is_refused_naming_them(
    env: Env, gt: GiftronautProvider
) -> None:
    people = (("Jane", "50", "jane@example.com"), ("Omar", "25", None))
    with pytest.raises(OrderDeclined, match="Omar has no email address"):
        await gt.place_shared_order(shared_order(*people))
    assert not env.state.created_orders


async def test_order_status_progresses_pending_in_progress_complete(
    env: Env, gt: GiftronautProvider
) -> None:
    placed = await gt.place_order(order())
    statuses = [env.state.orders[placed.provider_order_id].status]
    result = placed
    while result.state is OrderState.PENDING:
        result = await gt.get_order(placed.provider_order_id)
        statuses.append(env.state.orders[placed.provider_order_id].status)
    assert statuses == ["PENDING", "IN_PROGRESS", "COMPLETE"]


async def test_an_order_that_completes_at_once_is_completed_from_the_create_answer(
    env: Env, gt: GiftronautProvider
) -> None:
    env.state.polls_to_complete = 0  # the sandbox completes orders immediately
    result = await gt.place_order(order())
    assert result.state is OrderState.COMPLETED and result.delivered_by_provider


async def test_choice_order_goes_to_the_choice_endpoint_with_exact_decimal_amount(
    env: Env, gt: GiftronautProvider
) -> None:
    await gt.place_order(order(product_id="choice:55", amount="10.10"))
    [seen] = env.state.seen("POST", "/api/v1/orders/choice-cards")
    assert seen.body["productId"] == "55"
    amount = seen.body["recipients"][0]["amount"]
    assert isinstance(amount, Decimal) and amount == Decimal("10.10")  # parsed losslessly
    assert env.state.created_orders[0].card_type == "CHOICE_CARD"


async def test_jpy_amounts_are_sent_as_whole_numbers(env: Env, gt: GiftronautProvider) -> None:
    await gt.place_order(order(product_id="branded:30011", amount="3000", currency="JPY"))
    [seen] = env.state.seen("POST", "-cards")
    assert seen.body["recipients"][0]["amount"] == 3000
    assert env.state.created_orders[0].cost_usd == Decimal("20.10")


async def test_a_scheduled_send_is_passed_with_its_time_zone(
    env: Env, gt: GiftronautProvider
) -> None:
    at = datetime(2030, 3, 1, 9, 0)
    result = await gt.place_order(order(), schedule=ScheduledSend(at=at, timezone="Asia/Tokyo"))
    [seen] = env.state.seen("POST", "-cards")
    assert seen.body["sendTiming"] == {
        "type": "SCHEDULED",
        "scheduledAt": "2030-03-01T09:00:00",
        "timezone": "Asia/Tokyo",
    }
    assert result.state is OrderState.PENDING
    # Not a zone: unknown, or a folder of the zone database (which fails to open instead).
    for not_a_zone in ("Mars/Olympus", "Europe"):
        with pytest.raises(ValidationError):
            ScheduledSend(at=at, timezone=not_a_zone)


async def test_replaying_the_same_key_returns_the_same_order(env: Env) -> None:
    sends = SendLog()
    first = await env.adapter().place_order(order(), sends)
    # A restarted bot (a fresh adapter, the record from its database) replays the key.
    again = await env.adapter().place_order(order(), SendLog(sends.record))
    assert again.provider_order_id == first.provider_order_id
    assert len(env.state.created_orders) == 1
    assert len(env.state.seen("POST", "-cards")) == 2


async def test_a_replay_with_the_send_log_is_the_same_order_and_never_one_past_the_window(
    env: Env, gt: GiftronautProvider
) -> None:
    # Once the bot has stored the order id it only looks the order up (get_order); that is the
    # bot's part (bot/jobs/fulfil/ordering.py). The adapter's part: until then, a replay of the
    # key is that order, and past Giftronaut's window it sends nothing.
    sends = ClockedSendLog()
    first = await gt.place_order(order(), sends)
    again = await gt.place_order(order(), sends)
    assert again.provider_order_id == first.provider_order_id
    assert len(env.state.seen("POST", "-cards")) == 2
    assert len(env.state.created_orders) == 1
    assert sends.record.unsettled_since is not None  # settled by the bot storing the id

    env.clock.offset += 25 * 3600  # past Giftronaut's 24-hour window
    env.state.advance(25 * 3600)
    sends.offset = timedelta(hours=25)
    with pytest.raises(OutcomeUnknown, match="too old to replay safely"):
        await gt.place_order(order(), sends)
    assert len(env.state.seen("POST", "-cards")) == 2  # not sent: it would be a new order
    assert len(env.state.created_orders) == 1
    looked_up = await gt.get_order(first.provider_order_id)
    assert looked_up.provider_order_id == first.provider_order_id


async def test_a_key_too_old_to_replay_safely_parks_the_order_for_review(
    env: Env, gt: GiftronautProvider
) -> None:
    sends = ClockedSendLog()
    env.state.fail_next_with(503, times=3)
    with pytest.raises(ProviderUnavailable):
        await gt.place_order(order(), sends)
    assert sends.record.unsettled_since is not None and sends.record.sends == 3
    sends.offset = timedelta(hours=23.5)  # past SAFE_REPLAY_AGE (23 h) since the first send
    with pytest.raises(OutcomeUnknown, match="too old to replay safely"):
        await gt.place_order(order(), sends)
    # A restarted bot (its database's record, a fresh adapter) refuses the same way.
    with pytest.raises(OutcomeUnknown, match="too old to replay safely"):
        await env.adapter().place_order(order(), SendLog(unsettled(timedelta(hours=23.5))))
    assert len(env.state.seen("POST", "-cards")) == 3  # only the three failed attempts
    assert env.state.created_orders == []


async def test_a_key_still_inside_the_safe_replay_age_is_replayed(
    env: Env, gt: GiftronautProvider
) -> None:
    sends = SendLog(unsettled(timedelta(hours=22.5), sends=3))  # its answers were lost
    result = await gt.place_order(order(), sends)
    assert result.provider_order_id == env.state.created_orders[0].order_id
    assert len(env.state.created_orders) == 1


async def test_an_old_key_whose_sends_are_settled_is_not_held_by_the_replay_window(
    env: Env, gt: GiftronautProvider
) -> None:
    # Sent 30 hours ago and refused outright (nothing placed, nothing unsettled): sending it
    # again cannot order twice.
    day_ago = datetime.now(UTC) - timedelta(hours=30)
    refused = SendRecord(first_sent_at=day_ago, last_sent_at=day_ago, sends=1)
    await gt.place_order(order(), SendLog(refused))
    assert len(env.state.created_orders) == 1


async def test_a_refused_retry_after_a_lost_answer_within_one_call_needs_review(
    env: Env, gt: GiftronautProvider
) -> None:
    env.state.drop_next_after_processing()  # the order is created, its answer lost

    async def refuse_from_now_on() -> None:
        env.state.fail_next_with(403, "FORBIDDEN")

    env.tripwire.arm("POST", "/api/v1/orders/", refuse_from_now_on, after=True)
    sends = SendLog()
    with pytest.raises(OutcomeUnknown, match="answer was lost") as caught:
        await gt.place_order(order(), sends)  # the adapter's own retry is refused
    assert "FORBIDDEN" in caught.value.message
    assert len(env.state.seen("POST", "-cards")) == 2
    assert len(env.state.created_orders) == 1
    assert sends.record.unsettled_since is not None


async def test_a_refused_retry_after_a_lost_answer_in_an_earlier_call_needs_review(
    env: Env,
) -> None:
    gt = env.adapter(retry=RetryPolicy(attempts=1, base_delay=0.01))
    sends = SendLog()
    env.state.drop_next_after_processing()  # the order is created, its answer lost
    with pytest.raises(ProviderUnavailable):
        await gt.place_order(order(), sends)
    env.state.fail_next_with(403, "FORBIDDEN")
    with pytest.raises(OutcomeUnknown, match="answer was lost"):
        await gt.place_order(order(), sends)  # the bot's retry, same key, same record
    # And after a restart (a fresh adapter, the database's record).
    env.state.fail_next_with(403, "FORBIDDEN")
    with pytest.raises(OutcomeUnknown, match="answer was lost"):
        await env.adapter().place_order(order(), SendLog(sends.record))
    assert len(env.state.seen("POST", "-cards")) == 3
    assert len(env.state.created_orders) == 1


async def test_each_send_is_recorded_before_it_leaves(env: Env, gt: GiftronautProvider) -> None:
    sends = WatchedSendLog(lambda: len(env.state.seen("POST", "-cards")))
    env.state.drop_next_after_processing()
    await gt.place_order(order(), sends)
    # Two sends (the first answer was lost), each written before its POST arrived.
    assert sends.at_write == [0, 1]
    assert len(env.state.seen("POST", "-cards")) == 2
    assert sends.record.sends == 2


async def test_a_refused_connection_sends_nothing_and_leaves_the_key_settled(
    env: Env,
) -> None:
    transport = RefusePosts("-cards")
    async with httpx.AsyncClient(transport=transport) as refusing:
        gt = env.adapter(refusing, retry=RetryPolicy(attempts=2, base_delay=0.01))
        sends = ClockedSendLog()
        with pytest.raises(ProviderUnavailable):
            await gt.place_order(order(), sends)
    assert transport.refused == 2
    assert env.state.seen("POST", "-cards") == []
    assert sends.record.sends == 2
    assert sends.record.unsettled_since is None
    # Nothing can have been ordered, so even past Giftronaut's window the key is sent again.
    sends.offset = timedelta(hours=30)
    await env.adapter().place_order(order(), sends)
    assert len(env.state.created_orders) == 1


async def test_long_keys_are_hashed_to_a_stable_64_character_key(env: Env) -> None:
    long_key = "rewardbot-" + "9" * 40 + "-" + "ab" * 16
    derived = giftronaut_key(long_key)
    assert len(derived) == 64 and derived == giftronaut_key(long_key)
    assert derived != giftronaut_key(long_key + "0")
    assert giftronaut_key(KEY) == KEY

    sends = SendLog()
    first = await env.adapter().place_order(order(key=long_key), sends)
    again = await env.adapter().place_order(order(key=long_key), SendLog(sends.record))
    assert first.provider_order_id == again.provider_order_id
    assert {r.body["idempotencyKey"] for r in env.state.seen("POST", "-cards")} == {derived}
    assert len(env.state.created_orders) == 1


async def test_same_key_with_a_different_body_is_an_idempotency_conflict(env: Env) -> None:
    await env.adapter().place_order(order(amount="50"))
    with pytest.raises(IdempotencyConflict, match="order may exist"):
        await env.adapter().place_order(order(amount="100"))  # Giftronaut's 409
    gt = env.adapter()
    sends = SendLog()
    await gt.place_order(order(key=KEY + "x", email="jane@example.com"), sends)
    posts = len(env.state.seen("POST", "-cards"))
    with pytest.raises(IdempotencyConflict, match="order may exist"):
        # Caught here, by the key's send log (and after a restart, by its record): not sent.
        await gt.place_order(order(key=KEY + "x", email="jane.doe@example.com"), sends)
    with pytest.raises(IdempotencyConflict):
        await env.adapter().place_order(
            order(key=KEY + "x", email="jane.doe@example.com"), SendLog(sends.record)
        )
    assert len(env.state.seen("POST", "-cards")) == posts
    assert len(env.state.created_orders) == 2


# -- failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 402, 422])
async def test_insufficient_balance(env: Env, gt: GiftronautProvider, status: int) -> None:
    env.state.insufficient_status = status
    env.state.balance_usd = Decimal(10)
    with pytest.raises(InsufficientFunds, match="balance is too low"):
        await gt.place_order(order())
    assert env.state.created_orders == []


@pytest.mark.parametrize(
    ("product_id", "amount", "match"),
    [
        ("branded:10042", "30", "INVALID_AMOUNT"),  # not a price point
        ("branded:424242", "50", "PRODUCT_NOT_FOUND"),  # 404
        ("choice:55", "600", "INVALID_AMOUNT"),  # outside the range
        ("other:1", "50", "not a Giftronaut card"),  # never sent
    ],
)
async def test_invalid_product_or_amount(
    env: Env, gt: GiftronautProvider, product_id: str, amount: str, match: str
) -> None:
    with pytest.raises(InvalidProduct, match=match):
        await gt.place_order(order(product_id=product_id, amount=amount))
    assert env.state.created_orders == []


async def test_a_currency_that_differs_from_the_catalog_is_refused_before_sending(
    env: Env, gt: GiftronautProvider
) -> None:
    await gt.list_products()
    with pytest.raises(InvalidProduct, match="sold in USD"):
        await gt.place_order(order(currency="GBP"))
    assert env.state.seen("POST", "-cards") == []


async def test_out_of_stock(env: Env, gt: GiftronautProvider) -> None:
    env.state.out_of_stock.add("10042")
    with pytest.raises(OutOfStock, match="out of stock"):
        await gt.place_order(order())


async def test_no_recipient_email_is_refused_before_sending(
    env: Env, gt: GiftronautProvider
) -> None:
    assert GiftronautProvider.needs_recipient_email is True
    with pytest.raises(OrderDeclined, match="no email address"):
        await gt.place_order(order(email=None))
    assert env.state.requests == []


async def test_other_refusals_show_the_code_and_never_the_vendor_text(
    env: Env, gt: GiftronautProvider
) -> None:
    env.state.fail_next_with(400, "RECIPIENT_BLOCKED")
    with pytest.raises(OrderDeclined, match="RECIPIENT_BLOCKED") as caught:
        await gt.place_order(order())
    assert "injected" not in caught.value.message


async def test_an_unexplained_conflict_on_create_needs_review(
    env: Env, gt: GiftronautProvider
) -> None:
    env.state.fail_next_with(409, "REQUEST_IN_PROGRESS")
    with pytest.raises(OutcomeUnknown, match="REQUEST_IN_PROGRESS"):
        await gt.place_order(order())


async def test_a_canceled_order_is_failed(env: Env, gt: GiftronautProvider) -> None:
    placed = await gt.place_order(order())
    env.state.orders[placed.provider_order_id].status = "CANCELED"
    result = await gt.get_order(placed.provider_order_id)
    assert result.state is OrderState.FAILED
    assert result.failure_reason == "Giftronaut cancelled the order; no card was sent."


async def test_an_unknown_status_or_order_needs_review(env: Env, gt: GiftronautProvider) -> None:
    placed = await gt.place_order(order())
    env.state.orders[placed.provider_order_id].status = "REFUNDED"
    with pytest.raises(OutcomeUnknown, match="REFUNDED"):
        await gt.get_order(placed.provider_order_id)
    with pytest.raises(OutcomeUnknown, match="no order OT-nope"):
        await gt.get_order("OT-nope")


async def test_unreadable_answers_are_retryable_and_never_quoted(
    env: Env, gt: GiftronautProvider
) -> None:
    env.state.polls_to_complete = 0
    placed = await gt.place_order(order())
    link = env.state.orders[placed.provider_order_id].reward_link
    assert link is not None
    env.state.orders[placed.provider_order_id].order_id = ""  # an invalid answer with a link
    with pytest.raises(ProviderUnavailable) as caught:
        await gt.get_order(placed.provider_order_id)
    assert link not in str(caught.value)


async def test_a_dropped_answer_is_retried_without_a_duplicate_order(
    env: Env, gt: GiftronautProvider
) -> None:
    env.state.drop_next_after_processing()
    result = await gt.place_order(order())
    assert len(env.state.created_orders) == 1
    assert result.provider_order_id == env.state.created_orders[0].order_id
    bodies = [r.body for r in env.state.seen("POST", "-cards")]
    assert len(bodies) == 2 and bodies[0] == bodies[1]


async def test_a_server_error_is_retried_without_a_duplicate_order(
    env: Env, gt: GiftronautProvider
) -> None:
    env.state.fail_next_with(503)
    env.state.drop_next_after_processing()
    result = await gt.place_order(order())
    assert len(env.state.created_orders) == 1
    assert result.provider_order_id == env.state.created_orders[0].order_id


async def test_server_errors_past_the_retry_budget_are_retryable_for_the_bot(
    env: Env, gt: GiftronautProvider
) -> None:
    env.state.fail_next_with(500, times=3)
    with pytest.raises(ProviderUnavailable, match="HTTP 500"):
        await gt.place_order(order())
    assert env.state.created_orders == []
    # The bot retries later with the same key: still one order.
    env.state.drop_next_after_processing()
    await gt.place_order(order())
    assert len(env.state.created_orders) == 1


async def test_rate_limit_waits_as_asked(env: Env, gt: GiftronautProvider) -> None:
    await gt.list_products()  # mint the token first
    env.state.rate_limit_next(retry_after=0.3)
    started = time.monotonic()
    await gt.place_order(order())
    assert time.monotonic() - started >= 0.3
    assert len(env.state.created_orders) == 1


async def test_persistent_rate_limit_reports_the_wait(env: Env, gt: GiftronautProvider) -> None:
    for _ in range(3):
        env.state.rate_limit_next(retry_after=0.01)
    with pytest.raises(RateLimited) as caught:
        await gt.get_order("OT1")
    assert caught.value.retry_after == pytest.approx(0.01)


# -- authentication -----------------------------------------------------------------------------


async def test_the_token_is_reused_across_calls(env: Env, gt: GiftronautProvider) -> None:
    await gt.list_products()
    placed = await gt.place_order(order())
    await gt.get_order(placed.provider_order_id)
    assert len(env.state.token_requests) == 1
    [form] = env.state.token_requests
    assert form["grant_type"] == "client_credentials"
    assert form["client_id"] == CLIENT_ID and form["client_secret"] == CLIENT_SECRET
    assert set(form["scope"].split()) == {
        "catalog.read",
        "orders.read",
        "orders.write",
        "orders.cancel",
    }


async def test_the_token_is_renewed_shortly_before_it_expires(
    env: Env, gt: GiftronautProvider
) -> None:
    await gt.list_products()
    env.clock.offset += 3600 - 59  # inside the 60-second margin
    await gt.list_products()
    assert len(env.state.token_requests) == 2
    env.clock.offset += 60
    await gt.list_products()
    assert len(env.state.token_requests) == 2


async def test_a_401_renews_the_token_once_and_the_request_succeeds(
    env: Env, gt: GiftronautProvider
) -> None:
    await gt.list_products()
    env.state.revoke_tokens()
    result = await gt.place_order(order())
    assert len(env.state.token_requests) == 2
    assert len(env.state.created_orders) == 1
    assert result.provider_order_id == env.state.created_orders[0].order_id


async def test_a_401_that_persists_is_an_authentication_failure_after_one_renewal(
    env: Env, gt: GiftronautProvider
) -> None:
    await gt.list_products()
    env.state.fail_next_with(401, "UNAUTHORIZED", times=2)
    with pytest.raises(AuthenticationFailed, match="access token"):
        await gt.get_order("OT1")
    assert len(env.state.token_requests) == 2


async def test_a_burst_of_calls_mints_one_token(env: Env, gt: GiftronautProvider) -> None:
    await asyncio.gather(*(gt.list_products() for _ in range(10)))
    assert len(env.state.token_requests) == 1
    env.state.revoke_tokens()
    await asyncio.gather(*(gt.list_products() for _ in range(10)))
    assert len(env.state.token_requests) == 2


async def test_bad_client_credentials(env: Env) -> None:
    wrong = "not-the-secret-5e6f"
    gt = env.adapter(client_secret=SecretStr(wrong))
    with pytest.raises(AuthenticationFailed, match="GIFTRONAUT_CLIENT_SECRET") as caught:
        await gt.place_order(order())
    assert wrong not in str(caught.value) and "invalid_client" in str(caught.value)
    assert env.state.seen("POST", "-cards") == []
    assert len(env.state.token_requests) == 1  # a refusal is not retried


async def test_a_scope_the_app_lacks(env: Env) -> None:
    env.state.app_scopes = frozenset({"catalog.read", "orders.read", "orders.write"})
    with pytest.raises(AuthenticationFailed, match="GIFTRONAUT_SCOPE"):
        await env.adapter().list_products()
    gt = env.adapter(scope="catalog.read orders.read")
    with pytest.raises(AuthenticationFailed, match="scope"):
        await gt.place_order(order())  # 403 INSUFFICIENT_SCOPE
    assert env.state.created_orders == []


async def test_token_endpoint_outage_is_retried(env: Env, gt: GiftronautProvider) -> None:
    env.state.fail_next_token_with(503)
    await gt.list_products()
    assert len(env.state.token_requests) == 2
    env.state.revoke_tokens()
    env.state.fail_next_token_with(503, times=3)
    with pytest.raises(ProviderUnavailable, match="sign-in"):
        await gt.list_products()


# -- cancel and resend --------------------------------------------------------------------------


def later() -> ScheduledSend:
    return ScheduledSend(at=datetime.now() + timedelta(days=3), timezone="Europe/London")


async def test_cancel_a_scheduled_order(env: Env, gt: GiftronautProvider) -> None:
    placed = await gt.place_order(order(), schedule=later())
    balance = env.state.balance_usd
    await gt.cancel_order(placed.provider_order_id)
    assert env.state.orders[placed.provider_order_id].status == "CANCELED"
    assert env.state.balance_usd == balance + Decimal(50)
    assert (await gt.get_order(placed.provider_order_id)).state is OrderState.FAILED


async def test_cancel_an_immediate_order_is_refused_clearly(
    env: Env, gt: GiftronautProvider
) -> None:
    placed = await gt.place_order(order())
    with pytest.raises(OrderNotCancelable, match="only scheduled orders"):
        await gt.cancel_order(placed.provider_order_id)
    assert env.state.orders[placed.provider_order_id].status != "CANCELED"


async def test_a_cancel_whose_answer_was_lost_is_a_success(
    env: Env, gt: GiftronautProvider
) -> None:
    placed = await gt.place_order(order(), schedule=later())
    env.state.drop_next_after_processing()
    await gt.cancel_order(placed.provider_order_id)  # the retry gets ORDER_NOT_CANCELABLE
    assert len(env.state.seen("DELETE", "/cancel")) == 2
    assert env.state.orders[placed.provider_order_id].status == "CANCELED"


async def test_resend_to_the_same_address(env: Env, gt: GiftronautProvider) -> None:
    placed = await gt.place_order(order())
    await gt.resend(placed.provider_order_id, None)
    assert env.state.orders[placed.provider_order_id].resends == [{"email": "jane@example.com"}]


async def test_resend_to_a_new_address(env: Env, gt: GiftronautProvider) -> None:
    placed = await gt.place_order(order())
    await gt.resend(placed.provider_order_id, "jane@example.com", "jane.doe@example.org")
    [seen] = env.state.seen("POST", "/resend")
    assert seen.body == {
        "recipients": [{"email": "jane@example.com", "updatedEmail": "jane.doe@example.org"}]
    }


async def test_a_redirect_whose_answer_was_lost_is_recognised_as_done(
    env: Env, gt: GiftronautProvider
) -> None:
    placed = await gt.place_order(order())
    env.state.drop_next_after_processing()  # redirected, then the answer is lost
    await gt.resend(placed.provider_order_id, "jane@example.com", "jane.doe@example.org")
    # The retry found the old address gone (nothing requeued): the order shows it was done.
    assert len(env.state.seen("POST", "/resend")) == 2
    assert env.state.orders[placed.provider_order_id].resends == [
        {"email": "jane@example.com", "updatedEmail": "jane.doe@example.org"}
    ]


async def test_a_resend_in_a_shared_order_refuses_an_address_listed_twice(
    env: Env, gt: GiftronautProvider
) -> None:
    people = (("Jane", "50", "same@example.com"), ("Omar", "25", "same@example.com"))
    placed = await settle(gt, await gt.place_shared_order(shared_order(*people)))
    with pytest.raises(OrderDeclined, match="exactly once"):
        await gt.resend(placed.provider_order_id, "same@example.com")
    assert not env.state.orders[placed.provider_order_id].resends


async def test_resend_in_a_shared_order_goes_to_that_recipient_only(
    env: Env, gt: GiftronautProvider
) -> None:
    placed = await settle(gt, await gt.place_shared_order(shared_order()))
    await gt.resend(placed.provider_order_id, "OMAR@example.com", "omar@home.example")
    assert env.state.orders[placed.provider_order_id].resends == [
        {"email": "omar@example.com", "updatedEmail": "omar@home.example"}
    ]
    with pytest.raises(OrderDeclined, match="does not list this recipient"):
        await gt.resend(placed.provider_order_id, "lin@example.com")


async def test_resend_of_an_unknown_order(env: Env, gt: GiftronautProvider) -> None:
    with pytest.raises(OutcomeUnknown, match="no order"):
        await gt.resend("OT404", None)


# -- secrets and settings -----------------------------------------------------------------------


async def test_secrets_never_appear_in_reprs_or_errors(env: Env, gt: GiftronautProvider) -> None:
    placed = await gt.place_order(order())
    token = next(iter(env.state.tokens))
    errors: list[ProviderError] = []
    injected: list[tuple[int, str | None, int]] = [
        (401, None, 2),
        (403, None, 1),
        (500, None, 3),
        (400, "VALIDATION_ERROR", 1),
    ]
    for status, code, times in injected:
        env.state.fail_next_with(status, code, times=times)
        with pytest.raises(ProviderError) as caught:
            await gt.get_order(placed.provider_order_id)
        errors.append(caught.value)
    shown = repr(gt) + repr(placed) + "".join(f"{e!r}{e}" for e in errors)
    for secret in (CLIENT_SECRET, token):
        assert secret not in shown
    assert gt._token is not None
    assert token not in repr(gt._token)


def test_from_env_reads_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTRONAUT_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("GIFTRONAUT_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.delenv("GIFTRONAUT_API_URL", raising=False)
    gt = GiftronautProvider.from_env(httpx.AsyncClient())
    assert gt._base_url == PRODUCTION_URL
    assert CLIENT_SECRET not in repr(gt)
    monkeypatch.setenv("GIFTRONAUT_API_URL", "http://127.0.0.1:9/")
    assert GiftronautProvider.from_env(httpx.AsyncClient())._base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("env_vars", "named"),
    [
        ({}, ["GIFTRONAUT_CLIENT_ID is required", "GIFTRONAUT_CLIENT_SECRET is required"]),
        ({"GIFTRONAUT_CLIENT_ID": "x"}, ["GIFTRONAUT_CLIENT_SECRET is required"]),
        ({"GIFTRONAUT_CLIENT_ID": "x", "GIFTRONAUT_CLIENT_SECRET": ""}, ["CLIENT_SECRET"]),
        (
            {
                "GIFTRONAUT_CLIENT_ID": "x",
                "GIFTRONAUT_CLIENT_SECRET": "sekrit-value",
                "GIFTRONAUT_API_URL": "ftp:x",
            },
            ["GIFTRONAUT_API_URL must be an http(s) URL"],
        ),
    ],
)
def test_from_env_errors_name_the_variable(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    env_vars: dict[str, str],
    named: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    for name in ("CLIENT_ID", "CLIENT_SECRET", "API_URL", "SCOPE", "SENDER_NAME"):
        monkeypatch.delenv(f"GIFTRONAUT_{name}", raising=False)
    for name, value in env_vars.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ProviderConfigError) as caught:
        GiftronautProvider.from_env(httpx.AsyncClient())
    for text in named:
        assert text in caught.value.message
    assert "sekrit-value" not in caught.value.message
