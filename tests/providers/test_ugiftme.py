"""Contract tests: the real UGiftMe adapter over real HTTP against the fake UGiftMe server.

Calls for one idempotency key share one :class:`SendLog` (it stands in for the bot's database);
a "restart" is a fresh adapter given a log that carries the record the database would hold.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from bot.domain import Money
from providers.base import OrderRequest, OrderResult, OrderState, Recipient, SendLog
from providers.errors import (
    AuthenticationFailed,
    InsufficientFunds,
    InvalidProduct,
    OrderDeclined,
    OutcomeUnknown,
    ProviderConfigError,
    ProviderUnavailable,
    RateLimited,
)
from providers.http import RetryPolicy
from providers.ugiftme import PRODUCTION_URL, UGiftMeProvider
from tests.fakes import serve
from tests.fakes.ugiftme import API, UGiftMeState
from tests.fakes.ugiftme import app as ugiftme_app
from tests.providers.sending import RefusePosts, WatchedSendLog, unsettled

AMAZON = "AMAZON_UK_STD|Amazon UK"
JOHN_LEWIS = "JL_UK_STD|John Lewis"


@dataclass
class Env:
    fake: UGiftMeState
    adapter: UGiftMeProvider
    http: httpx.AsyncClient
    url: str

    def adapter_with_key(self, key: str, http: httpx.AsyncClient | None = None) -> UGiftMeProvider:
        return UGiftMeProvider(
            http or self.http, key, self.url, retry=RetryPolicy(attempts=3, base_delay=0.01)
        )

    def restarted(self) -> UGiftMeProvider:
        """A fresh adapter, as a restarted bot builds it."""
        return self.adapter_with_key(self.fake.api_key)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    fake = UGiftMeState()
    async with serve(ugiftme_app(fake)) as url, httpx.AsyncClient(timeout=5) as http:
        adapter = UGiftMeProvider(
            http,
            fake.api_key,
            url,
            retry=RetryPolicy(attempts=3, base_delay=0.01),
            poll_interval=0.01,
        )
        yield Env(fake, adapter, http, url)


def _order(
    key: str = "rewardbot-1-abc",
    amount: str = "25.00",
    product: str = AMAZON,
    currency: str = "GBP",
    email: str | None = "jane@example.com",
) -> OrderRequest:
    return OrderRequest(
        idempotency_key=key,
        product_id=product,
        face_value=Money(amount=Decimal(amount), currency=currency),
        reference="rewardbot-1",
        recipient=Recipient(slack_user_id="U0JANE", name="Jane Doe", email=email),
        message="For shipping the release",
    )


async def _until_settled(adapter: UGiftMeProvider, result: OrderResult) -> list[OrderResult]:
    seen = [result]
    for _ in range(20):
        if seen[-1].state is not OrderState.PENDING:
            return seen
        seen.append(await adapter.get_order(seen[-1].provider_order_id))
    raise AssertionError(f"still pending after 20 polls: {seen}")


def _secrets_of(fake: UGiftMeState) -> list[str]:
    return [
        s
        for order in fake.orders.values()
        for s in (order["merchant"]["voucherCode"], order["merchant"]["redemptionUrl"])
    ]


# -- catalog -------------------------------------------------------------------------------------


async def test_catalog_is_parsed_with_exact_face_values(env: Env) -> None:
    products = {p.product_id: p for p in await env.adapter.list_products()}
    assert set(products) == {AMAZON, JOHN_LEWIS, "TESCO-GBP-50|Tesco"}
    amazon = products[AMAZON]
    assert amazon.provider == "ugiftme"
    assert amazon.key == "ugiftme:AMAZON_UK_STD|Amazon UK"
    assert amazon.name == "Amazon.co.uk Gift Card"
    assert (amazon.currency, amazon.min_value, amazon.max_value) == ("GBP", 5, 500)
    assert amazon.denominations == ()
    john_lewis = products[JOHN_LEWIS]
    assert john_lewis.name == "John Lewis"  # no product name: the merchant's
    assert john_lewis.denominations == (Decimal(10), Decimal(25), Decimal(50))
    assert products["TESCO-GBP-50|Tesco"].denominations == (Decimal(50),)
    (call,) = env.fake.calls("GET", f"{API}/products")
    assert call.headers["X-API-Key"] == env.fake.api_key


def _shop(code: str) -> dict[str, object]:
    return {"productCode": code, "merchant": "Shop", "currency": "GBP", "values": [5]}


async def test_catalog_follows_pages_and_skips_what_it_cannot_read(env: Env) -> None:
    env.fake.products = [
        {"productCode": f"GIFT-{i}", "merchant": "Shop", "currency": "GBP", "values": [10.5]}
        for i in range(150)
    ] + [
        {"productCode": "NO-VALUES", "merchant": "Shop", "currency": "GBP"},
        {**_shop("OFF"), "isActive": False},
        {**_shop("BAD-CCY"), "currency": "pounds"},
        _shop("A|B"),
        {"productCode": "NO-MERCHANT", "currency": "GBP", "values": [5]},
        {"merchant": "Shop", "currency": "GBP", "values": [5]},
        "not a product",
        {
            "productCode": "RANGE-BACKWARDS",
            "merchant": "Shop",
            "currency": "EUR",
            "minValue": 9,
            "maxValue": 1,
        },
        {
            "productCode": "EURO",
            "merchant": {"name": "Shop"},
            "currency": "eur",
            "minimumValue": 0.5,
            "maximumValue": 99.99,
        },
    ]
    products = {p.product_id: p for p in await env.adapter.list_products()}
    assert len(env.fake.calls("GET", f"{API}/products")) == 2  # 100 a page, 159 entries
    assert set(products) == {f"GIFT-{i}|Shop" for i in range(150)} | {"EURO|Shop"}
    assert products["GIFT-7|Shop"].denominations == (Decimal("10.5"),)
    euro = products["EURO|Shop"]
    assert (euro.currency, euro.min_value, euro.max_value) == (
        "EUR",
        Decimal("0.5"),
        Decimal("99.99"),
    )


@pytest.mark.parametrize("currency", ["USS", "XAU"])
async def test_catalog_skips_a_product_in_a_code_that_is_not_money(
    env: Env, currency: str, caplog: pytest.LogCaptureFixture
) -> None:
    env.fake.products = [{**_shop("GOLD"), "currency": currency}, _shop("FINE")]
    assert [p.product_id for p in await env.adapter.list_products()] == ["FINE|Shop"]
    assert "skipped product 'GOLD' (currency is not an ISO 4217 currency)" in caplog.text


async def test_catalog_outage_is_retryable(env: Env) -> None:
    env.fake.fail_next_with(503, route="products", times=3)
    with pytest.raises(ProviderUnavailable):
        await env.adapter.list_products()
    assert len(env.fake.calls("GET", f"{API}/products")) == 3


# -- successful orders ---------------------------------------------------------------------------


async def test_sync_order_is_created_once_and_completed_with_the_voucher(env: Env) -> None:
    result = await env.adapter.place_order(_order())
    assert env.fake.order_count == 1
    (order,) = env.fake.orders.values()
    assert result.state is OrderState.COMPLETED
    assert result.provider_order_id == f"order:{order['_id']}"
    assert result.redemption is not None
    assert result.redemption.code is not None and result.redemption.url is not None
    assert result.redemption.code.get_secret_value() == order["merchant"]["voucherCode"]
    assert result.redemption.url.get_secret_value() == order["merchant"]["redemptionUrl"]
    assert result.redemption.pin is None
    assert result.charged is None  # UGiftMe does not say what the wallet was debited
    assert not result.delivered_by_provider
    (call,) = env.fake.create_calls
    assert call.headers["Idempotency-Key"] == "rewardbot-1-abc"
    assert call.headers["X-API-Key"] == env.fake.api_key
    assert call.json() == {
        "productCode": "AMAZON_UK_STD",
        "merchant": "Amazon UK",
        "currency": "GBP",
        "valuePurchased": 25,
        "recipientEmail": "jane@example.com",
        "recipientName": "Jane Doe",
        "giftMessage": "For shipping the release",
    }
    # The stored id finds the order again.
    again = await env.adapter.get_order(result.provider_order_id)
    assert again == result


async def test_fractional_amount_is_sent_as_the_exact_json_number(env: Env) -> None:
    await env.adapter.place_order(_order(amount="12.35", email=None))
    (call,) = env.fake.create_calls
    assert b'"valuePurchased": 12.35' in call.body
    assert "recipientEmail" not in call.json()
    (order,) = env.fake.orders.values()
    assert order["valuePurchased"] == Decimal("12.35")


async def test_async_order_is_polled_until_it_succeeds(env: Env) -> None:
    env.fake.async_mode = True
    env.fake.async_steps = 3
    placed = await env.adapter.place_order(_order())
    assert placed.state is OrderState.PENDING
    (request_id,) = env.fake.order_requests
    assert placed.provider_order_id == f"request:{request_id}"
    assert env.fake.order_count == 0  # nothing issued before the worker runs
    results = await _until_settled(env.adapter, placed)
    assert [r.state for r in results] == [OrderState.PENDING] * 3 + [OrderState.COMPLETED]
    (order,) = env.fake.orders.values()
    done = results[-1]
    assert done.provider_order_id == f"order:{order['_id']}"
    assert done.redemption is not None and done.redemption.code is not None
    assert done.redemption.code.get_secret_value() == order["merchant"]["voucherCode"]
    assert len(env.fake.calls("GET", f"{API}/orders/order-requests/")) == 3
    # Both ids keep finding the order.
    assert (await env.adapter.get_order(placed.provider_order_id)).redemption == done.redemption
    assert (await env.adapter.get_order(done.provider_order_id)).redemption == done.redemption
    assert env.fake.order_count == 1


async def test_async_success_with_only_an_order_id_reads_the_order(env: Env) -> None:
    env.fake.async_mode = True
    env.fake.poll_result = "order_id"  # the order.succeeded webhook shape
    placed = await env.adapter.place_order(_order())
    done = (await _until_settled(env.adapter, placed))[-1]
    assert done.state is OrderState.COMPLETED
    (order,) = env.fake.orders.values()
    assert done.redemption is not None and done.redemption.code is not None
    assert done.redemption.code.get_secret_value() == order["merchant"]["voucherCode"]
    assert len(env.fake.calls("GET", f"{API}/orders/{order['_id']}")) == 1


async def test_async_success_without_an_order_id_needs_review(env: Env) -> None:
    env.fake.async_mode = True
    env.fake.poll_result = "garbage"
    placed = await env.adapter.place_order(_order())
    with pytest.raises(OutcomeUnknown, match="succeeded but not which order"):
        await _until_settled(env.adapter, placed)


async def test_async_order_that_fails_is_reported_with_the_vendor_reason(env: Env) -> None:
    env.fake.async_mode = True
    env.fake.fail_next_async("Insufficient available balance. Required: 50, Available: 10 GBP")
    placed = await env.adapter.place_order(_order())
    failed = (await _until_settled(env.adapter, placed))[-1]
    assert failed.state is OrderState.FAILED
    assert failed.provider_order_id == placed.provider_order_id
    assert failed.failure_reason == (
        "UGiftMe could not issue the card: Insufficient available balance. "
        "Required: 50, Available: 10 GBP"
    )
    assert failed.redemption is None
    assert env.fake.order_count == 0


async def test_unknown_request_status_needs_review_instead_of_polling_forever(env: Env) -> None:
    env.fake.async_mode = True
    placed = await env.adapter.place_order(_order())
    next(iter(env.fake.order_requests.values()))["status"] = "paused"
    with pytest.raises(OutcomeUnknown, match="'paused'"):
        await env.adapter.get_order(placed.provider_order_id)


# -- idempotency and retries ---------------------------------------------------------------------


async def test_replay_with_the_same_key_returns_the_same_order(env: Env) -> None:
    first = await env.adapter.place_order(_order())
    second = await env.adapter.place_order(_order())
    assert second == first
    assert len(env.fake.create_calls) == 2
    assert env.fake.order_count == 1


async def test_async_replay_returns_the_same_order_request(env: Env) -> None:
    env.fake.async_mode = True
    first = await env.adapter.place_order(_order())
    second = await env.adapter.place_order(_order())
    assert second.provider_order_id == first.provider_order_id
    assert len(env.fake.order_requests) == 1
    await _until_settled(env.adapter, second)
    assert env.fake.order_count == 1


async def test_same_key_with_another_body_needs_review(env: Env) -> None:
    await env.adapter.place_order(_order(amount="25"))
    with pytest.raises(OutcomeUnknown, match="idempotency key was already used") as caught:
        await env.adapter.place_order(_order(amount="30"))
    assert "order history" in caught.value.message
    assert env.fake.order_count == 1


async def test_dropped_connection_after_the_order_was_created_is_replayed(env: Env) -> None:
    env.fake.drop_next_after_processing()
    result = await env.adapter.place_order(_order())
    assert env.fake.order_count == 1
    assert len(env.fake.create_calls) == 2
    first, second = env.fake.create_calls
    assert first.body == second.body
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    (order,) = env.fake.orders.values()
    assert result.provider_order_id == f"order:{order['_id']}"
    assert result.state is OrderState.COMPLETED


async def test_server_error_is_retried_into_one_order(env: Env) -> None:
    env.fake.fail_next_with(503, {"error": "Service unavailable"})
    env.fake.fail_next_with(500, {"error": "Internal error"}, after_processing=True)
    result = await env.adapter.place_order(_order())
    assert result.state is OrderState.COMPLETED
    assert len(env.fake.create_calls) == 3
    assert len({c.body for c in env.fake.create_calls}) == 1
    assert env.fake.order_count == 1


async def test_outage_longer_than_the_retries_is_retryable_and_the_bot_retry_is_one_order(
    env: Env,
) -> None:
    sends = SendLog()
    env.fake.drop_next_after_processing()
    env.fake.fail_next_with(502, times=2)
    with pytest.raises(ProviderUnavailable):
        await env.adapter.place_order(_order(), sends)
    assert env.fake.order_count == 1  # created by the first, lost, attempt
    result = await env.adapter.place_order(_order(), sends)  # the bot's later retry, same key
    (order,) = env.fake.orders.values()
    assert result.provider_order_id == f"order:{order['_id']}"
    assert env.fake.order_count == 1


async def test_rate_limit_waits_as_asked(env: Env) -> None:
    env.fake.rate_limit_next(0.3)
    started = time.monotonic()
    result = await env.adapter.place_order(_order())
    assert result.state is OrderState.COMPLETED
    first, second = env.fake.create_calls
    assert second.at - first.at >= 0.29
    assert time.monotonic() - started >= 0.29
    assert env.fake.order_count == 1


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("RateLimit-Reset", "0.3"),
        ("X-RateLimit-Reset", "unix:+0.3"),
        ("Retry-After", "http-date:+1"),
    ],
)
async def test_rate_limit_reads_the_other_reset_headers(env: Env, header: str, value: str) -> None:
    if value.startswith("unix:"):
        value = f"{time.time() + 0.3:.3f}"
    elif value.startswith("http-date:"):
        value = formatdate(time.time() + 1.5, usegmt=True)  # whole seconds: 0.5 to 1.5 s away
    env.fake.rate_limit_next(value, header=header)
    await env.adapter.place_order(_order())
    first, second = env.fake.create_calls
    assert second.at - first.at >= 0.25
    assert env.fake.order_count == 1


async def test_rate_limit_that_persists_is_raised_with_its_wait(env: Env) -> None:
    for _ in range(3):
        env.fake.rate_limit_next(0.05)
    with pytest.raises(RateLimited) as caught:
        await env.adapter.place_order(_order())
    assert caught.value.retry_after == pytest.approx(0.05)
    assert env.fake.order_count == 0


# -- refusals ------------------------------------------------------------------------------------


async def test_insufficient_funds_is_refused_clearly(env: Env) -> None:
    env.fake.balance = Decimal(10)
    with pytest.raises(InsufficientFunds) as caught:
        await env.adapter.place_order(_order(amount="50"))
    assert caught.value.message == (
        "The UGiftMe wallet cannot cover this card (49.50 GBP needed). "
        "Top up the UGiftMe wallet, then request the reward again."
    )
    assert env.fake.order_count == 0
    assert len(env.fake.create_calls) == 1  # a refusal is not retried


async def test_amount_not_allowed_is_an_invalid_product_with_the_vendor_message(env: Env) -> None:
    with pytest.raises(InvalidProduct) as caught:
        await env.adapter.place_order(_order(amount="20", product=JOHN_LEWIS))
    assert caught.value.message == (
        "UGiftMe does not accept this card or amount: "
        "Validation failed: valuePurchased must be one of 10, 25, 50 for JL_UK_STD"
    )
    assert env.fake.order_count == 0
    assert len(env.fake.create_calls) == 1


async def test_unknown_product_is_an_invalid_product(env: Env) -> None:
    with pytest.raises(InvalidProduct, match="Product not found: No product NOPE"):
        await env.adapter.place_order(_order(product="NOPE|Amazon UK"))
    assert env.fake.order_count == 0


async def test_other_validation_error_is_declined_with_the_vendor_message(env: Env) -> None:
    with pytest.raises(OrderDeclined) as caught:
        await env.adapter.place_order(_order(email="not-an-email"))
    assert caught.value.message == (
        "UGiftMe declined the order: Validation failed: recipientEmail must be a valid email"
    )
    assert env.fake.order_count == 0


async def test_product_id_not_made_by_this_adapter_is_refused_without_a_call(env: Env) -> None:
    with pytest.raises(InvalidProduct):
        await env.adapter.place_order(_order(product="AMAZON_UK_STD"))
    assert env.fake.seen == []


async def test_wrong_api_key_is_an_authentication_failure(env: Env) -> None:
    adapter = env.adapter_with_key("wrong-key-123")
    with pytest.raises(AuthenticationFailed) as caught:
        await adapter.place_order(_order())
    assert "UGIFTME_API_KEY" in caught.value.message
    assert "Invalid API key" in caught.value.message
    assert "wrong-key-123" not in caught.value.message
    assert env.fake.order_count == 0
    assert len(env.fake.create_calls) == 1


async def test_ip_allow_list_block_is_an_authentication_failure(env: Env) -> None:
    env.fake.fail_next_with(403, {"error": "IP address not allowed"})
    with pytest.raises(AuthenticationFailed, match=r"IP address not allowed.*allow-list"):
        await env.adapter.place_order(_order())
    assert env.fake.order_count == 0


async def test_undocumented_4xx_is_declined_with_what_the_vendor_said(env: Env) -> None:
    env.fake.fail_next_with(422, {"error": "Unprocessable", "message": "Recipient blocked"})
    with pytest.raises(OrderDeclined, match="Unprocessable: Recipient blocked"):
        await env.adapter.place_order(_order())


async def test_in_flight_conflict_is_retried(env: Env) -> None:
    env.fake.fail_next_with(409, {"error": "Request in progress"})
    result = await env.adapter.place_order(_order())
    assert result.state is OrderState.COMPLETED
    assert env.fake.order_count == 1


async def test_refusal_after_a_lost_attempt_needs_review(env: Env) -> None:
    """A lost first attempt may have bought the card, so a refusal of the retry is not final."""
    env.fake.drop_next_before_processing()
    env.fake.balance = Decimal(1)  # the retry is refused for funds
    with pytest.raises(OutcomeUnknown, match="answer was lost") as caught:
        await env.adapter.place_order(_order())
    assert "Top up" in caught.value.message
    assert len(env.fake.create_calls) == 2


async def test_refusal_after_a_lost_bot_level_attempt_needs_review(env: Env) -> None:
    sends = SendLog()
    for _ in range(3):
        env.fake.drop_next_before_processing()
    with pytest.raises(ProviderUnavailable):
        await env.adapter.place_order(_order(), sends)
    env.fake.balance = Decimal(1)
    with pytest.raises(OutcomeUnknown, match="answer was lost"):
        await env.adapter.place_order(_order(), sends)  # the bot's retry, same key
    # After a restart too: the database's record says the answers were lost.
    with pytest.raises(OutcomeUnknown, match="answer was lost") as caught:
        await env.restarted().place_order(_order(), SendLog(sends.record))
    assert "Top up" in caught.value.message
    assert env.fake.order_count == 0
    assert len(env.fake.create_calls) == 5


async def test_refusal_after_the_bot_died_mid_send_needs_review(env: Env) -> None:
    # The send was recorded, then the process died before any answer was recorded.
    env.fake.balance = Decimal(1)
    with pytest.raises(OutcomeUnknown, match="answer was lost"):
        await env.restarted().place_order(_order(), SendLog(unsettled(timedelta(seconds=5))))
    assert len(env.fake.create_calls) == 1


async def test_refusal_after_a_settled_refusal_is_taken_at_its_word(env: Env) -> None:
    sends = SendLog()
    env.fake.balance = Decimal(1)
    with pytest.raises(InsufficientFunds):
        await env.adapter.place_order(_order(), sends)
    assert sends.record.unsettled_since is None
    with pytest.raises(InsufficientFunds):
        await env.restarted().place_order(_order(), SendLog(sends.record))
    assert env.fake.order_count == 0


async def test_a_refused_connection_sends_nothing_and_leaves_the_key_settled(env: Env) -> None:
    transport = RefusePosts("/orders")
    async with httpx.AsyncClient(transport=transport, timeout=5) as refusing:
        sends = SendLog()
        with pytest.raises(ProviderUnavailable):
            await env.adapter_with_key(env.fake.api_key, refusing).place_order(_order(), sends)
    assert transport.refused == 3
    assert env.fake.create_calls == []
    assert (sends.record.sends, sends.record.unsettled_since) == (3, None)
    # Nothing can have been ordered, so a refusal of the next attempt is the answer.
    env.fake.balance = Decimal(1)
    with pytest.raises(InsufficientFunds):
        await env.adapter.place_order(_order(), sends)


async def test_a_refused_connection_after_a_lost_answer_keeps_the_key_unsettled(
    env: Env,
) -> None:
    record = unsettled(timedelta(seconds=5))  # an earlier send's answer was lost
    transport = RefusePosts("/orders")
    async with httpx.AsyncClient(transport=transport, timeout=5) as refusing:
        sends = SendLog(record)
        with pytest.raises(ProviderUnavailable):
            await env.adapter_with_key(env.fake.api_key, refusing).place_order(_order(), sends)
    assert transport.refused == 3
    assert sends.record.unsettled_since == record.unsettled_since
    assert sends.record.sends == 4
    env.fake.balance = Decimal(1)
    with pytest.raises(OutcomeUnknown, match="answer was lost"):
        await env.adapter.place_order(_order(), sends)


async def test_each_create_is_recorded_before_it_is_sent(env: Env) -> None:
    sends = WatchedSendLog(lambda: len(env.fake.create_calls))
    env.fake.fail_next_with(503, {"error": "Service unavailable"})
    await env.adapter.place_order(_order(), sends)
    assert sends.at_write == [0, 1]
    assert len(env.fake.create_calls) == 2


async def test_get_order_for_an_order_it_cannot_find_needs_review(env: Env) -> None:
    with pytest.raises(OutcomeUnknown, match=r"order:0123.*Order not found"):
        await env.adapter.get_order("order:0123")
    with pytest.raises(OutcomeUnknown, match="Order request not found"):
        await env.adapter.get_order("request:4567")


async def test_get_order_with_a_revoked_key_needs_review(env: Env) -> None:
    placed = await env.adapter.place_order(_order())
    with pytest.raises(OutcomeUnknown, match="Invalid API key"):
        await env.adapter_with_key("revoked").get_order(placed.provider_order_id)


async def test_poll_outage_is_retryable(env: Env) -> None:
    env.fake.async_mode = True
    placed = await env.adapter.place_order(_order())
    env.fake.fail_next_with(500, route="poll", times=3)
    with pytest.raises(ProviderUnavailable):
        await env.adapter.get_order(placed.provider_order_id)
    env.fake.drop_next_after_processing(route="poll")
    done = (await _until_settled(env.adapter, placed))[-1]
    assert done.state is OrderState.COMPLETED
    assert env.fake.order_count == 1


async def test_unreadable_answer_is_retryable_and_never_echoes_the_body(env: Env) -> None:
    env.fake.fail_next_with(200, {"unexpected": "SECRET-CODE-1234"}, route="order", times=3)
    placed = await env.adapter.place_order(_order())
    with pytest.raises(ProviderUnavailable) as caught:
        await env.adapter.get_order(placed.provider_order_id)
    assert "SECRET-CODE-1234" not in str(caught.value)


# -- secrets and settings ------------------------------------------------------------------------


async def test_secrets_stay_out_of_reprs_messages_and_logs(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    env.fake.drop_next_after_processing()
    result = await env.adapter.place_order(_order())
    secrets = [*_secrets_of(env.fake), env.fake.api_key]
    shown = repr(result) + str(result) + repr(env.adapter) + caplog.text
    for secret in secrets:
        assert secret not in shown
    env.fake.fail_next_with(400, {"error": f"Bad key {env.fake.api_key}"})
    with pytest.raises(OrderDeclined) as caught:
        await env.adapter.place_order(_order(key="other"))
    assert env.fake.api_key not in caught.value.message
    assert "[redacted]" in caught.value.message


async def test_vendor_text_is_bounded_and_on_one_line(env: Env) -> None:
    env.fake.fail_next_with(400, {"error": "Nope\n\x1b[31m" + "x" * 1000})
    with pytest.raises(OrderDeclined) as caught:
        await env.adapter.place_order(_order())
    assert "\n" not in caught.value.message and "\x1b" not in caught.value.message
    assert len(caught.value.message) < 300


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.delenv("UGIFTME_API_KEY", raising=False)
    monkeypatch.delenv("UGIFTME_API_URL", raising=False)
    return monkeypatch


async def test_from_env_requires_the_api_key(clean_env: pytest.MonkeyPatch) -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ProviderConfigError, match="UGIFTME_API_KEY is required"):
            UGiftMeProvider.from_env(http)
        clean_env.setenv("UGIFTME_API_KEY", "   ")
        with pytest.raises(ProviderConfigError, match="UGIFTME_API_KEY must not be empty"):
            UGiftMeProvider.from_env(http)


async def test_from_env_rejects_a_malformed_url(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("UGIFTME_API_KEY", "k-123")
    clean_env.setenv("UGIFTME_API_URL", "api.ugift.me")
    async with httpx.AsyncClient() as http:
        with pytest.raises(ProviderConfigError, match="UGIFTME_API_URL must be an http") as caught:
            UGiftMeProvider.from_env(http)
    assert "k-123" not in str(caught.value)


async def test_from_env_defaults_to_production_and_reads_the_env_file(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("UGIFTME_API_KEY=key-from-dotenv\n")
    async with httpx.AsyncClient() as http:
        adapter = UGiftMeProvider.from_env(http)
    assert PRODUCTION_URL in repr(adapter)
    assert "key-from-dotenv" not in repr(adapter)


async def test_from_env_builds_a_working_adapter(clean_env: pytest.MonkeyPatch, env: Env) -> None:
    clean_env.setenv("UGIFTME_API_KEY", env.fake.api_key)
    clean_env.setenv("UGIFTME_API_URL", env.url + "/")
    adapter = UGiftMeProvider.from_env(env.http)
    assert {p.product_id for p in await adapter.list_products()} >= {AMAZON}
