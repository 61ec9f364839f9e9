"""Contract tests: the real CardPlusPay adapter over real HTTP against the fake CardPlusPay API.

Every "no second order" claim is checked on the fake's own record of purchases. Calls for one
idempotency key share one :class:`SendLog` (it stands in for the bot's database); a "restart" is
a fresh adapter given a log that carries the record the database would hold.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from bot.domain import Money
from providers.base import OrderRequest, OrderState, Recipient, SendLog
from providers.cardpluspay import PRODUCTION_URL, CardPlusPayProvider
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
from providers.http import RetryPolicy
from tests.fakes import serve
from tests.fakes.cardpluspay import (
    API_KEY,
    CardPlusPayState,
    minutes_ago,
    standard_state,
)
from tests.fakes.cardpluspay import app as cardpluspay_app
from tests.providers.sending import (
    FailingSendLog,
    RefusePosts,
    StoreDown,
    WatchedSendLog,
    unsettled,
)

GOOGLE = "GOOGLE-5USD-KOXx"
JANE = "jane@example.com"
SETTLE = 0.2


@pytest.fixture
def state() -> CardPlusPayState:
    return standard_state()


@pytest.fixture
async def api(state: CardPlusPayState) -> AsyncIterator[str]:
    async with serve(cardpluspay_app(state)) as url:
        yield f"{url}/v1"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=2.0) as client:
        yield client


def adapter(http: httpx.AsyncClient, api: str, key: str = API_KEY) -> CardPlusPayProvider:
    """A fresh adapter, as a freshly started bot would build it."""
    return CardPlusPayProvider(
        http,
        key,
        api,
        retry=RetryPolicy(attempts=3, base_delay=0.01),
        poll_interval=0.01,
        settle_time=timedelta(seconds=SETTLE),
    )


@pytest.fixture
def cpp(http: httpx.AsyncClient, api: str) -> CardPlusPayProvider:
    return adapter(http, api)


def an_order(
    key: str = "rewardbot-1-a1b2",
    product: str = GOOGLE,
    amount: str = "5",
    currency: str = "USD",
    email: str | None = JANE,
) -> OrderRequest:
    return OrderRequest(
        idempotency_key=key,
        product_id=product,
        face_value=Money(amount=Decimal(amount), currency=currency),
        reference=f"rewardbot-{key.split('-')[1]}",
        recipient=Recipient(slack_user_id="U0JANE", name="Jane Doe", email=email),
        message="For shipping the release",
    )


# -- catalog ----------------------------------------------------------------------------------


async def test_catalog_lists_digital_cards_with_exact_face_values(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    state.max_per_page = 2  # the four items come on two pages
    products = {p.product_id: p for p in await cpp.list_products()}
    assert set(products) == {GOOGLE, "AMZN-25USD-Q7rT", "ZAL-50EUR-m2Pz"}  # no PHYSICAL card
    google = products[GOOGLE]
    assert google.provider == "cardpluspay"
    assert google.key == f"cardpluspay:{GOOGLE}"
    assert google.name == "Google Play 5 USD"
    assert google.currency == "USD"
    assert google.denominations == (Decimal("5.00"),)
    assert all(isinstance(d, Decimal) for p in products.values() for d in p.denominations)
    assert products["ZAL-50EUR-m2Pz"].currency == "EUR"
    assert products["ZAL-50EUR-m2Pz"].allows(Decimal(50))
    catalog_calls = state.seen("GET", "/catalog")
    assert [c.query.get("page") for c in catalog_calls] == [None, "2"]
    assert all(c.api_key == API_KEY for c in catalog_calls)


async def test_catalog_skips_items_it_cannot_sell(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    state.items[GOOGLE].currency = "dollars"
    assert GOOGLE not in {p.product_id for p in await cpp.list_products()}


@pytest.mark.parametrize("currency", ["USS", "XAU"])
async def test_catalog_skips_an_item_in_a_code_that_is_not_money_and_keeps_the_rest(
    cpp: CardPlusPayProvider,
    state: CardPlusPayState,
    currency: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Three capital letters are not a currency: ISO 4217 has no USS, and gold has no cents."""
    state.items[GOOGLE].currency = currency
    ids = {p.product_id for p in await cpp.list_products()}
    assert GOOGLE not in ids
    assert "ZAL-50EUR-m2Pz" in ids
    assert f"skipping cardpluspay item {GOOGLE!r}" in caplog.text


# -- ordering ---------------------------------------------------------------------------------


async def test_an_order_is_checked_bought_once_and_returns_code_pin_and_charge(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    sends = SendLog()
    result = await cpp.place_order(an_order(), sends)

    assert len(state.orders) == 1
    bought = state.orders[0]
    assert (bought.item_code, bought.email) == (GOOGLE, JANE)
    assert state.seen("POST", "/orders")[0].body == {
        "item_code": GOOGLE,
        "quantity": 1,
        "email": JANE,
    }
    # The item was re-read and its stock checked before buying. The key was never sent (its
    # send log is empty), so no earlier order can be ours: the order list is not read at all.
    sequence = [(r.method, r.path) for r in state.requests]
    assert sequence == [("GET", "/catalog"), ("POST", "/orders/check"), ("POST", "/orders")]
    assert state.seen("GET", "/orders") == []
    assert state.seen("POST", "/orders/check")[0].body == {"item_id": GOOGLE, "quantity": 1}
    assert sends.record.sends == 1 and sends.record.fingerprint is not None

    assert result.state is OrderState.COMPLETED
    assert result.provider_order_id == str(bought.order_id)
    assert result.redemption is not None and result.redemption.code is not None
    assert result.redemption.code.get_secret_value() == bought.code
    assert result.redemption.pin is not None and bought.pin is not None
    assert result.redemption.pin.get_secret_value() == bought.pin
    assert result.redemption.url is None
    assert result.charged == Money(amount=Decimal("4.90"), currency="USD")
    assert not result.delivered_by_provider


async def test_an_asynchronous_order_is_pending_then_completes(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    state.polls_until_complete = 2
    placed = await cpp.place_order(an_order())
    assert placed.state is OrderState.PENDING
    assert placed.redemption is None
    first = await cpp.get_order(placed.provider_order_id)
    assert first.state is OrderState.PENDING
    done = await cpp.get_order(placed.provider_order_id)
    assert done.state is OrderState.COMPLETED
    assert done.redemption is not None and done.redemption.code is not None
    assert done.charged == Money(amount=Decimal("4.90"), currency="USD")
    assert len(state.orders) == 1


async def test_an_order_that_fails_while_pending_is_reported(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    state.polls_until_complete = 1
    placed = await cpp.place_order(an_order())
    state.orders[0].fail_when_due = True
    result = await cpp.get_order(placed.provider_order_id)
    assert result.state is OrderState.FAILED
    assert (
        result.failure_reason == f"CardPlusPay reports order {state.orders[0].order_no} as failed."
    )
    assert result.redemption is None


async def test_an_order_pending_for_too_long_needs_a_person(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    state.polls_until_complete = 100
    stuck = state.create_order(GOOGLE, JANE, created_at=minutes_ago(60 * 25))
    with pytest.raises(OutcomeUnknown, match="has not been issued"):
        await cpp.get_order(str(stuck.order_id))


async def test_an_unknown_order_id_needs_a_person_not_a_refusal(cpp: CardPlusPayProvider) -> None:
    with pytest.raises(OutcomeUnknown, match="CardPlusPay dashboard"):
        await cpp.get_order("999999")


async def test_the_same_key_with_its_send_log_is_the_same_order(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    sends = SendLog()
    first = await cpp.place_order(an_order(), sends)
    # Until the bot stores the order id, the key's send is unsettled: a repeat finds the order.
    again = await cpp.place_order(an_order(), sends)
    assert again.provider_order_id == first.provider_order_id
    assert again.redemption == first.redemption
    assert len(state.orders) == 1
    assert state.purchases_attempted == 1


async def test_the_same_key_with_another_card_is_a_conflict(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    sends = SendLog()
    await cpp.place_order(an_order(), sends)
    with pytest.raises(IdempotencyConflict):
        await cpp.place_order(an_order(product="AMZN-25USD-Q7rT", amount="25"), sends)
    assert len(state.orders) == 1
    assert state.purchases_attempted == 1


async def test_the_same_key_with_another_recipient_after_a_settled_send_is_a_conflict(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    sends = SendLog()
    state.fail_next_with(503)  # answered, and not in the list: settled as not bought
    with pytest.raises(ProviderUnavailable, match="not bought"):
        await cpp.place_order(an_order(), sends)
    assert sends.record.unsettled_since is None
    with pytest.raises(IdempotencyConflict):
        await cpp.place_order(an_order(email="omar@example.com"), sends)
    assert state.orders == []
    assert state.purchases_attempted == 1


async def test_a_second_reward_of_the_same_card_in_the_same_process_is_bought(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    first = await cpp.place_order(an_order(key="rewardbot-1-aaaa"))
    second = await cpp.place_order(an_order(key="rewardbot-2-bbbb"))
    assert first.provider_order_id != second.provider_order_id
    assert len(state.orders) == 2


async def test_an_earlier_order_of_the_same_card_for_the_same_person_does_not_block(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    # An earlier reward of this card to Jane, last week and a minute ago: a key never sent is
    # bought without reading the order list, so neither holds the new reward up.
    state.create_order(GOOGLE, JANE, created_at=minutes_ago(60 * 24 * 8))
    state.create_order(GOOGLE, JANE, created_at=minutes_ago(1))
    result = await cpp.place_order(an_order())
    assert len(state.orders) == 3
    assert result.provider_order_id == str(state.orders[-1].order_id)
    assert state.seen("GET", "/orders") == []


async def test_an_amount_that_is_not_the_items_face_value_is_not_bought(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    with pytest.raises(InvalidProduct, match="worth 5"):
        await cpp.place_order(an_order(amount="10"))
    assert state.purchases_attempted == 0


async def test_no_recipient_email_is_refused_before_any_call(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    with pytest.raises(OrderDeclined, match="email"):
        await cpp.place_order(an_order(email=None))
    assert state.requests == []


# -- documented errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prepare", "error", "text"),
    [
        (lambda s: setattr(s, "balance", Decimal(1)), InsufficientFunds, "balance is too low"),
        (lambda s: setattr(s.items[GOOGLE], "stock", 0), OutOfStock, "out of stock"),
        (lambda s: s.items.pop(GOOGLE), InvalidProduct, "no longer offers"),
    ],
    ids=["insufficient-balance", "out-of-stock-at-check", "unknown-item"],
)
async def test_documented_refusals_map_to_the_taxonomy(
    cpp: CardPlusPayProvider,
    state: CardPlusPayState,
    prepare: object,
    error: type[ProviderError],
    text: str,
) -> None:
    prepare(state)  # type: ignore[operator]
    with pytest.raises(error, match=text) as caught:
        await cpp.place_order(an_order())
    assert "CardPlusPay" in caught.value.message
    assert state.orders == []


@pytest.mark.parametrize(
    ("status", "message", "error"),
    [
        (400, "Gift card out of stock", OutOfStock),
        (400, "Insufficient balance", InsufficientFunds),
        (400, "Invalid item code", InvalidProduct),
        (422, "The item code field is required.", InvalidProduct),
        (422, "The quantity must be between 1 and 100.", OrderDeclined),
        (401, "Invalid or missing API key", AuthenticationFailed),
    ],
)
async def test_refusals_of_the_purchase_itself_map_to_the_taxonomy(
    cpp: CardPlusPayProvider,
    state: CardPlusPayState,
    status: int,
    message: str,
    error: type[ProviderError],
) -> None:
    # The checks passed, then the purchase was refused (e.g. the last card sold meanwhile).
    state.fail_next_with(status, message)
    with pytest.raises(error) as caught:
        await cpp.place_order(an_order())
    assert type(caught.value) is error
    if status != 401:
        assert f'CardPlusPay said: "{message}"' in caught.value.message
    assert state.orders == []
    assert state.purchases_attempted == 1


async def test_a_bad_api_key_is_an_authentication_failure(
    http: httpx.AsyncClient, api: str, state: CardPlusPayState
) -> None:
    wrong = adapter(http, api, key="cpp_live_wrong_key")
    with pytest.raises(AuthenticationFailed, match="CARDPLUSPAY_API_KEY") as caught:
        await wrong.place_order(an_order())
    assert "cpp_live_wrong_key" not in str(caught.value)
    with pytest.raises(AuthenticationFailed):
        await wrong.list_products()
    assert state.orders == []


async def test_a_validation_error_is_a_clear_refusal(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    with pytest.raises(OrderDeclined, match="email must be a valid email"):
        await cpp.place_order(an_order(email="not-an-address"))
    assert state.orders == []


# -- no second purchase -----------------------------------------------------------------------


async def test_a_dropped_connection_after_the_purchase_finds_the_order(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    sends = SendLog()
    state.drop_next_after_processing()
    result = await cpp.place_order(an_order(), sends)
    assert len(state.orders) == 1
    assert state.purchases_attempted == 1
    assert result.provider_order_id == str(state.orders[0].order_id)
    assert result.state is OrderState.COMPLETED
    # And the bot's retry with the same key is that order too.
    again = await cpp.place_order(an_order(), sends)
    assert again.provider_order_id == result.provider_order_id
    assert state.purchases_attempted == 1


async def test_a_server_error_after_the_purchase_finds_the_order(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    state.fail_next_with(500, after=True)
    result = await cpp.place_order(an_order())
    assert len(state.orders) == 1
    assert result.provider_order_id == str(state.orders[0].order_id)


async def test_a_server_error_before_the_purchase_is_retried_once_it_is_known_absent(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    sends = SendLog()
    state.fail_next_with(503)
    with pytest.raises(ProviderUnavailable, match="not bought"):
        await cpp.place_order(an_order(), sends)
    assert state.orders == []
    assert sends.record.unsettled_since is None  # answered, and not in the list: settled
    scans = len(state.seen("GET", "/orders"))
    result = await cpp.place_order(an_order(), sends)  # the bot retries with the same key
    assert len(state.orders) == 1
    assert state.purchases_attempted == 2
    assert result.provider_order_id == str(state.orders[0].order_id)
    assert len(state.seen("GET", "/orders")) == scans  # a settled key is not looked up again


async def test_a_dropped_connection_before_the_purchase_is_never_resent(
    http: httpx.AsyncClient, api: str, cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    sends = SendLog()
    state.drop_next_before_processing()
    with pytest.raises(ProviderUnavailable, match="checking again"):
        await cpp.place_order(an_order(), sends)
    with pytest.raises(ProviderUnavailable, match="checking again"):
        await cpp.place_order(an_order(), sends)
    await asyncio.sleep(SETTLE)
    with pytest.raises(OutcomeUnknown, match="CardPlusPay dashboard"):
        await cpp.place_order(an_order(), sends)
    # Nor after a restart: the database still says the purchase went out unanswered.
    with pytest.raises(OutcomeUnknown, match="CardPlusPay dashboard"):
        await adapter(http, api).place_order(an_order(), SendLog(sends.record))
    assert state.orders == []
    assert state.purchases_attempted == 1


async def test_a_purchase_that_shows_up_late_is_found(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    sends = SendLog()
    state.drop_next_before_processing()
    with pytest.raises(ProviderUnavailable):
        await cpp.place_order(an_order(), sends)
    late = state.create_order(GOOGLE, JANE)  # it had gone through after all
    result = await cpp.place_order(an_order(), sends)
    assert result.provider_order_id == str(late.order_id)
    assert state.purchases_attempted == 1


async def test_two_possible_orders_are_not_guessed_between(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    sends = SendLog()
    state.drop_next_before_processing()
    with pytest.raises(ProviderUnavailable):
        await cpp.place_order(an_order(), sends)
    state.create_order(GOOGLE, JANE)
    state.create_order(GOOGLE, JANE)  # e.g. someone also bought it from the dashboard
    with pytest.raises(OutcomeUnknown, match="CardPlusPay dashboard") as caught:
        await cpp.place_order(an_order(), sends)
    assert all(o.order_no in caught.value.message for o in state.orders)
    assert len(state.orders) == 2
    assert state.purchases_attempted == 1


async def test_an_order_that_cannot_be_ruled_out_is_not_guessed(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    state.show_email = False  # order reads without email or item code
    state.drop_next_after_processing()
    with pytest.raises(OutcomeUnknown, match="CardPlusPay dashboard"):
        await cpp.place_order(an_order())
    assert len(state.orders) == 1
    assert state.purchases_attempted == 1


async def test_unrelated_orders_in_the_window_are_ruled_out(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    state.create_order(GOOGLE, "omar@example.com")
    state.create_order("AMZN-25USD-Q7rT", JANE)
    state.drop_next_after_processing()
    result = await cpp.place_order(an_order())
    assert result.provider_order_id == str(state.orders[-1].order_id)
    assert len(state.orders) == 3


async def test_an_order_list_without_working_pages_fails_closed(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    state.max_per_page = 1
    state.honour_page = False
    state.create_order("AMZN-25USD-Q7rT", "omar@example.com")
    state.create_order("AMZN-25USD-Q7rT", "lin@example.com")
    # The bot died while this key's purchase was out (a minute ago): it must be looked up, and
    # only the first page of the list can be read.
    with pytest.raises(OutcomeUnknown, match="could not all be read"):
        await cpp.place_order(an_order(), SendLog(unsettled(timedelta(minutes=1))))
    assert state.purchases_attempted == 0


async def test_a_replay_after_a_restart_does_not_buy_again(
    http: httpx.AsyncClient, api: str, state: CardPlusPayState
) -> None:
    sends = SendLog()
    placed = await adapter(http, api).place_order(an_order(), sends)
    assert placed.state is OrderState.COMPLETED

    # The bot died before storing the order id: the restarted one replays the key, with the
    # record its database holds (sent, never settled). It finds that order, and buys nothing.
    after_restart = adapter(http, api)
    again = await after_restart.place_order(an_order(), SendLog(sends.record))
    assert again.provider_order_id == placed.provider_order_id
    assert again.redemption == placed.redemption
    assert len(state.orders) == 1
    assert state.purchases_attempted == 1


async def test_a_replay_after_a_restart_mid_purchase_does_not_buy_again(
    http: httpx.AsyncClient, api: str, state: CardPlusPayState
) -> None:
    state.polls_until_complete = 5  # the bot restarted while the order was pending
    sends = SendLog()
    placed = await adapter(http, api).place_order(an_order(), sends)
    again = await adapter(http, api).place_order(an_order(), SendLog(sends.record))
    assert again.provider_order_id == placed.provider_order_id
    assert again.state is OrderState.PENDING
    assert len(state.orders) == 1
    assert state.purchases_attempted == 1


async def test_a_purchase_in_flight_when_the_bot_died_is_found_not_bought_again(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    # The send was recorded, then the process died before any answer was recorded; the
    # purchase had reached CardPlusPay.
    bought = state.create_order(GOOGLE, JANE)
    result = await cpp.place_order(an_order(), SendLog(unsettled(timedelta(seconds=1))))
    assert result.provider_order_id == str(bought.order_id)
    assert state.purchases_attempted == 0


async def test_a_purchase_in_flight_when_the_bot_died_that_never_arrived_is_not_resent(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    # Just sent: CardPlusPay may still be processing it. Look again later.
    with pytest.raises(ProviderUnavailable, match="checking again"):
        await cpp.place_order(an_order(), SendLog(unsettled(timedelta(seconds=0))))
    # Sent longer than the settle time ago and still not there: a person decides.
    with pytest.raises(OutcomeUnknown, match="never answered the purchase"):
        await cpp.place_order(an_order(), SendLog(unsettled(timedelta(minutes=1))))
    assert state.orders == []
    assert state.purchases_attempted == 0


async def test_an_order_known_to_be_another_rewards_is_never_taken_for_this_one(
    http: httpx.AsyncClient, api: str, state: CardPlusPayState
) -> None:
    # An earlier reward of the same card to Jane, its order id stored by the bot.
    earlier = await adapter(http, api).place_order(an_order(key="rewardbot-1-aaaa"))
    attributed = frozenset({earlier.provider_order_id})
    sends = SendLog(attributed=attributed)
    placed = await adapter(http, api).place_order(an_order(key="rewardbot-2-bbbb"), sends)
    # A restart before this one's id was stored: two orders of this card for Jane, one of
    # them known to be the other reward's.
    again = await adapter(http, api).place_order(
        an_order(key="rewardbot-2-bbbb"), SendLog(sends.record, attributed)
    )
    assert again.provider_order_id == placed.provider_order_id != earlier.provider_order_id
    assert len(state.orders) == 2
    assert state.purchases_attempted == 2


async def test_one_purchase_known_not_placed_does_not_block_the_card_for_anyone(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    first = SendLog()
    state.fail_next_with(503)  # CardPlusPay answered 5xx, and the order is not in the list
    with pytest.raises(ProviderUnavailable, match="not bought"):
        await cpp.place_order(an_order(key="rewardbot-1-aaaa"), first)
    assert first.record.unsettled_since is None
    # Another reward of the same card for the same person is bought as usual, unscanned.
    scans = len(state.seen("GET", "/orders"))
    other = await cpp.place_order(an_order(key="rewardbot-2-bbbb"), SendLog())
    assert other.state is OrderState.COMPLETED
    assert other.provider_order_id == str(state.orders[0].order_id)
    assert len(state.seen("GET", "/orders")) == scans
    assert len(state.orders) == 1
    assert state.purchases_attempted == 2


async def test_one_lost_answer_does_not_block_the_card_for_anyone(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    lost = SendLog()
    state.drop_next_before_processing()  # no answer: the first reward's outcome is unknown
    with pytest.raises(ProviderUnavailable, match="checking again"):
        await cpp.place_order(an_order(key="rewardbot-1-aaaa"), lost)
    # Another reward of the same card for the same person is bought meanwhile, unscanned.
    scans = len(state.seen("GET", "/orders"))
    other = await cpp.place_order(an_order(key="rewardbot-2-bbbb"), SendLog())
    assert other.state is OrderState.COMPLETED
    assert len(state.seen("GET", "/orders")) == scans
    # The bot knows that order is the second reward's: the first never takes it for its own.
    lost = SendLog(lost.record, frozenset({other.provider_order_id}))
    with pytest.raises(ProviderUnavailable, match="checking again"):
        await cpp.place_order(an_order(key="rewardbot-1-aaaa"), lost)
    await asyncio.sleep(SETTLE)
    with pytest.raises(OutcomeUnknown, match="CardPlusPay dashboard"):
        await cpp.place_order(an_order(key="rewardbot-1-aaaa"), lost)
    assert len(state.orders) == 1
    assert state.purchases_attempted == 2


async def test_each_purchase_is_recorded_before_it_is_sent(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    sends = WatchedSendLog(lambda: state.purchases_attempted)
    await cpp.place_order(an_order(), sends)
    assert sends.at_write == [0]  # written while the purchase had not reached CardPlusPay
    assert state.purchases_attempted == 1
    assert sends.record.sends == 1


async def test_a_purchase_that_cannot_be_recorded_is_not_sent(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    with pytest.raises(StoreDown):
        await cpp.place_order(an_order(), FailingSendLog())
    assert state.purchases_attempted == 0
    assert state.orders == []


async def test_a_refused_connection_sends_nothing_and_leaves_the_key_settled(
    api: str, state: CardPlusPayState
) -> None:
    transport = RefusePosts("/orders")
    async with httpx.AsyncClient(transport=transport, timeout=2.0) as refusing:
        cpp = adapter(refusing, api)
        sends = SendLog()
        with pytest.raises(ProviderUnavailable):
            await cpp.place_order(an_order(), sends)
        assert transport.refused == 1
        assert state.purchases_attempted == 0
        assert sends.record.sends == 1
        assert sends.record.unsettled_since is None  # nothing reached CardPlusPay
        # So the next attempt buys at once: nothing to look up, nothing to wait for.
        transport.refusing = False
        result = await cpp.place_order(an_order(), sends)
    assert result.provider_order_id == str(state.orders[0].order_id)
    assert state.seen("GET", "/orders") == []
    assert state.purchases_attempted == 1


# -- rate limits ------------------------------------------------------------------------------


async def test_a_rate_limited_purchase_buys_nothing_and_says_how_long_to_wait(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    state.rate_limit_next(retry_after=0.3)
    with pytest.raises(RateLimited) as caught:
        await cpp.place_order(an_order())
    assert caught.value.retry_after == pytest.approx(0.3)
    assert state.orders == []
    await cpp.place_order(an_order())
    assert len(state.orders) == 1
    assert state.purchases_attempted == 2


async def test_a_rate_limited_read_waits_as_asked(
    cpp: CardPlusPayProvider, state: CardPlusPayState
) -> None:
    state.rate_limit_next(retry_after=0.3, method="GET", path="/catalog")
    started = time.monotonic()
    products = await cpp.list_products()
    assert time.monotonic() - started >= 0.3
    assert products
    assert len(state.seen("GET", "/catalog")) == 2


# -- secrets and settings ---------------------------------------------------------------------


async def test_secrets_stay_out_of_reprs_errors_and_logs(
    cpp: CardPlusPayProvider, state: CardPlusPayState, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    sends = SendLog()
    state.drop_next_after_processing()
    result = await cpp.place_order(an_order(), sends)
    bought = state.orders[0]
    assert bought.pin is not None
    state.create_order(GOOGLE, JANE)  # a dashboard purchase: the replay cannot tell them apart
    with pytest.raises(OutcomeUnknown) as caught:
        await adapter(cpp._http, cpp._base_url).place_order(an_order(), SendLog(sends.record))
    assert bought.order_no in caught.value.message
    shown = " ".join(
        [repr(result), str(result), repr(cpp), str(caught.value), caught.value.message, caplog.text]
    )
    for secret in (bought.code, bought.pin, API_KEY):
        assert secret not in shown


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.delenv("CARDPLUSPAY_API_KEY", raising=False)
    monkeypatch.delenv("CARDPLUSPAY_API_URL", raising=False)
    return monkeypatch


async def test_from_env_needs_the_api_key(
    clean_env: pytest.MonkeyPatch, http: httpx.AsyncClient
) -> None:
    with pytest.raises(ProviderConfigError, match="CARDPLUSPAY_API_KEY is required"):
        CardPlusPayProvider.from_env(http)
    clean_env.setenv("CARDPLUSPAY_API_KEY", "  ")
    with pytest.raises(ProviderConfigError, match="CARDPLUSPAY_API_KEY"):
        CardPlusPayProvider.from_env(http)


async def test_from_env_rejects_a_url_that_would_send_the_key_in_clear(
    clean_env: pytest.MonkeyPatch, http: httpx.AsyncClient
) -> None:
    clean_env.setenv("CARDPLUSPAY_API_KEY", API_KEY)
    clean_env.setenv("CARDPLUSPAY_API_URL", "http://api.cardpluspay.com/v1")
    with pytest.raises(ProviderConfigError, match="CARDPLUSPAY_API_URL") as caught:
        CardPlusPayProvider.from_env(http)
    assert API_KEY not in str(caught.value)


async def test_from_env_rejects_a_url_with_credentials_in_it(
    clean_env: pytest.MonkeyPatch, http: httpx.AsyncClient
) -> None:
    clean_env.setenv("CARDPLUSPAY_API_KEY", API_KEY)
    clean_env.setenv("CARDPLUSPAY_API_URL", "https://ops:hunter2-pass@api.cardpluspay.com/v1")
    with pytest.raises(ProviderConfigError, match="user name or password") as caught:
        CardPlusPayProvider.from_env(http)
    assert "hunter2-pass" not in str(caught.value)


async def test_from_env_defaults_to_production(
    clean_env: pytest.MonkeyPatch, http: httpx.AsyncClient, state: CardPlusPayState
) -> None:
    clean_env.setenv("CARDPLUSPAY_API_KEY", API_KEY)
    assert (
        CardPlusPayProvider.from_env(http)._base_url
        == PRODUCTION_URL
        == ("https://api.cardpluspay.com/v1")
    )
