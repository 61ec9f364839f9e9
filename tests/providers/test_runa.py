"""Contract tests: the real Runa adapter over real HTTP against the fake Runa API."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.domain import Money
from providers.base import (
    OrderLine,
    OrderRequest,
    OrderResult,
    OrderState,
    Recipient,
    SharedOrder,
)
from providers.errors import (
    AuthenticationFailed,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidProduct,
    OrderDeclined,
    OrderRefused,
    OutcomeUnknown,
    ProviderConfigError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    RetryableProviderError,
    WebhookRejected,
)
from providers.http import RetryPolicy
from providers.runa import API_VERSION, PRODUCTION_URL, RunaProvider
from tests.fakes import serve
from tests.fakes.runa import API_KEY, LINK_PREFIX, RunaState, product, sign_webhook
from tests.fakes.runa import app as runa_app

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


@dataclass
class Runa:
    provider: RunaProvider
    fake: RunaState
    url: str
    http: httpx.AsyncClient

    def adapter(self, **overrides: Any) -> RunaProvider:
        """Another adapter on the same fake, e.g. with other settings."""
        options: dict[str, Any] = {
            "api_key": SecretStr(API_KEY),
            "base_url": self.url + "/v2",
            "webhook_secret": SecretStr(self.fake.webhook_secret),
            "retry": FAST,
            "poll_interval": 0.01,
            "rate_limit_wait": 0.01,
            "in_progress_wait": 0.01,
        }
        return RunaProvider(self.http, **(options | overrides))


@pytest.fixture
async def runa() -> AsyncIterator[Runa]:
    state = RunaState()
    app = runa_app(state)
    async with serve(app) as url, httpx.AsyncClient(timeout=2.0) as http:
        harness = Runa(provider=None, fake=state, url=url, http=http)  # type: ignore[arg-type]
        harness.provider = harness.adapter()
        yield harness


def order(
    key: str = "rewardbot-1-key",
    product_id: str = "COFFEE-GB",
    amount: str = "25",
    currency: str = "GBP",
    reference: str = "rewardbot-1",
) -> OrderRequest:
    return OrderRequest(
        idempotency_key=key,
        product_id=product_id,
        face_value=Money(amount=Decimal(amount), currency=currency),
        reference=reference,
        recipient=Recipient(slack_user_id="U0JANE", name="Jane", email="jane@example.com"),
        message="For shipping the release",
    )


async def settle(provider: RunaProvider, result: OrderResult) -> OrderResult:
    for _ in range(200):
        if result.state is not OrderState.PENDING:
            return result
        await _sleep(0.01)
        result = await provider.get_order(result.provider_order_id)
    raise AssertionError("the order never settled")


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def secret_free(text: str, *secrets: str) -> bool:
    return not any(s and s in text for s in (API_KEY, LINK_PREFIX, *secrets))


# -- catalog -------------------------------------------------------------------------------


async def test_catalog_follows_pages_and_keeps_orderable_gift_cards(runa: Runa) -> None:
    products = {p.product_id: p for p in await runa.provider.list_products()}

    assert set(products) == {"COFFEE-GB", "BOOKS-US", "TRAVEL-FR"}
    coffee, books = products["COFFEE-GB"], products["BOOKS-US"]
    assert (coffee.provider, coffee.name, coffee.currency) == ("runa", "Fake Coffee UK", "GBP")
    assert (coffee.min_value, coffee.max_value) == (Decimal("5.00"), Decimal("500.00"))
    assert books.denominations == (Decimal(10), Decimal(25), Decimal(50))
    assert all(isinstance(d, Decimal) for d in books.denominations)
    catalog_calls = [r for r in runa.fake.requests if r.path == "/v2/product"]
    assert len(catalog_calls) >= 2, "the fake pages by 2: more than one page must be read"
    assert catalog_calls[0].query == {"is_orderable": "true", "limit": "500"}
    assert "after" in catalog_calls[1].query
    for call in catalog_calls:
        assert call.headers["X-Api-Key"] == API_KEY
        assert call.headers["X-Api-Version"] == API_VERSION


async def test_catalog_skips_a_product_it_cannot_read(runa: Runa) -> None:
    broken = product("ODD-XX", "Odd", "GBP", minimum="5.00", maximum="50.00")
    broken["gift_card"]["denominations"] = {"type": "open"}  # no bounds
    runa.fake.catalog = [
        broken,
        {"code": "NO-NAME", "is_orderable": True},
        product("BAD-CUR", "Bad currency", "pounds", fixed=("10.00",)),
        product("OK-GB", "Fine", "GBP", fixed=("10.00", "20.00")),
    ]
    assert [p.product_id for p in await runa.provider.list_products()] == ["OK-GB"]


@pytest.mark.parametrize("currency", ["USS", "XAU"])
async def test_catalog_skips_a_product_in_a_code_that_is_not_money(
    runa: Runa, currency: str, caplog: pytest.LogCaptureFixture
) -> None:
    runa.fake.catalog = [
        product("GOLD-XX", "Gold", currency, fixed=("10.00",)),
        product("OK-GB", "Fine", "GBP", fixed=("10.00", "20.00")),
    ]
    assert [p.product_id for p in await runa.provider.list_products()] == ["OK-GB"]
    assert "runa catalog: skipped product GOLD-XX" in caplog.text


# -- orders --------------------------------------------------------------------------------


async def test_an_async_order_is_placed_polled_and_completed(runa: Runa) -> None:
    placed = await runa.provider.place_order(order(amount="25"))
    assert placed.state is OrderState.PENDING

    result = await settle(runa.provider, placed)

    fake_order = runa.fake.only_order()
    assert result.provider_order_id == fake_order.id
    assert result.state is OrderState.COMPLETED
    assert result.redemption is not None and result.redemption.url is not None
    assert result.redemption.url.get_secret_value() == fake_order.link
    assert result.charged == Money(amount=Decimal("23.75"), currency="GBP")  # 5% discount
    assert not result.delivered_by_provider
    [post] = runa.fake.order_posts
    assert post.headers["X-Idempotency-Key"] == "rewardbot-1-key"
    assert post.headers["X-Execution-Mode"] == "async"
    assert post.headers["X-Api-Version"] == "2024-02-05"
    assert json.loads(post.body) == {
        "payment_method": {"type": "ACCOUNT_BALANCE", "currency": "GBP"},
        "items": [
            {
                "face_value": 25,
                "distribution_method": {"type": "PAYOUT_LINK"},
                "products": {"type": "SINGLE", "value": "COFFEE-GB"},
            }
        ],
        "description": "rewardbot-1",
        "metadata": {
            "rewardbot_reference": "rewardbot-1",
            "rewardbot_idempotency_key": "rewardbot-1-key",
        },
    }
    assert "idempotency_key" not in json.loads(post.body)  # the retired WeGift shape
    assert runa.fake.balances["GBP"] == Decimal("10000") - Decimal("23.75")


async def test_a_fractional_face_value_is_sent_exactly(runa: Runa) -> None:
    await runa.provider.place_order(order(amount="10.10"))
    assert b'"face_value": 10.10,' in runa.fake.order_posts[0].body
    assert runa.fake.only_order().face_value == Decimal("10.10")


async def test_a_sync_order_completes_in_one_call(runa: Runa) -> None:
    result = await runa.adapter(execution_mode="sync").place_order(
        order(product_id="BOOKS-US", amount="50", currency="USD")
    )
    assert result.state is OrderState.COMPLETED
    assert result.redemption is not None and result.redemption.url is not None
    assert result.redemption.url.get_secret_value() == runa.fake.only_order().link
    assert result.charged == Money(amount=Decimal("47.50"), currency="USD")
    assert runa.fake.order_posts[0].headers["X-Execution-Mode"] == "sync"


async def test_an_order_that_fails_while_processing_is_failed_without_a_link(runa: Runa) -> None:
    runa.fake.fail_next_order_async("The merchant is unavailable, see https://status.example")
    result = await settle(runa.provider, await runa.provider.place_order(order()))
    assert result.state is OrderState.FAILED
    assert result.redemption is None
    assert result.failure_reason is not None
    assert "merchant is unavailable" in result.failure_reason
    assert "https://" not in result.failure_reason


async def test_the_same_key_replays_the_same_order(runa: Runa) -> None:
    first = await runa.provider.place_order(order())
    await settle(runa.provider, first)
    again = await runa.provider.place_order(order())
    assert again.provider_order_id == first.provider_order_id
    assert len(runa.fake.orders) == 1
    assert len(runa.fake.order_posts) == 2


async def test_the_same_key_with_another_body_is_an_idempotency_conflict(runa: Runa) -> None:
    await runa.provider.place_order(order(amount="25"))
    with pytest.raises(IdempotencyConflict, match="different"):
        await runa.provider.place_order(order(amount="30"))
    assert len(runa.fake.orders) == 1


# -- refusals the fake decides on its own ----------------------------------------------------


async def test_a_wrong_api_key_is_an_authentication_failure(runa: Runa) -> None:
    wrong = runa.adapter(api_key=SecretStr("not-the-key"))
    with pytest.raises(AuthenticationFailed, match="RUNA_API_KEY") as caught:
        await wrong.place_order(order())
    assert "not-the-key" not in str(caught.value)
    with pytest.raises(AuthenticationFailed):
        await wrong.list_products()
    assert not runa.fake.orders


@pytest.mark.parametrize(
    ("request_", "error", "text"),
    [
        (order(product_id="NOPE-GB"), InvalidProduct, "unknown product"),
        (order(product_id="CLOSED-GB", amount="10"), InvalidProduct, "not orderable"),
        (order(product_id="BOOKS-US", amount="30", currency="USD"), InvalidProduct, "30"),
        (order(amount="0.001"), InvalidProduct, "face_value"),
    ],
)
async def test_a_card_runa_will_not_sell_is_an_invalid_product(
    runa: Runa, request_: OrderRequest, error: type[OrderRefused], text: str
) -> None:
    with pytest.raises(error, match=text):
        await runa.provider.place_order(request_)
    assert not runa.fake.orders


async def test_a_low_balance_is_insufficient_funds(runa: Runa) -> None:
    runa.fake.balances["GBP"] = Decimal("10.00")
    with pytest.raises(InsufficientFunds, match="balance"):
        await runa.provider.place_order(order(amount="25"))
    assert not runa.fake.orders
    # Runa replays the same refusal for the same key; a new key is a new order.
    with pytest.raises(InsufficientFunds):
        await runa.provider.place_order(order(amount="25"))
    assert not runa.fake.orders


async def test_paying_from_another_currency_balance_is_declined(runa: Runa) -> None:
    with pytest.raises(OrderDeclined, match="RUNA_PAYMENT_CURRENCY"):
        await runa.adapter(payment_currency="USD").place_order(order())
    assert json.loads(runa.fake.order_posts[0].body)["payment_method"]["currency"] == "USD"


# -- every documented error type -------------------------------------------------------------


def runa_error(error_type: str, message: str = "Runa says no") -> dict[str, str]:
    return {"type": error_type, "message": message, "help": "See the docs."}


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (401, runa_error("unauthorized"), AuthenticationFailed, "API key"),
        (401, runa_error("invalid_api_key"), AuthenticationFailed, "RUNA_API_KEY"),
        (403, runa_error("forbidden"), AuthenticationFailed, "may not"),
        (403, runa_error("ordering_restricted"), OrderDeclined, "spending limit"),
        (400, runa_error("bad_request"), OrderDeclined, "could not read"),
        (400, runa_error("invalid_version"), OrderDeclined, "2024-02-05"),
        (410, runa_error("version_removed"), OrderDeclined, "no longer supports"),
        (400, runa_error("pagination_error"), OrderDeclined, "page"),
        (404, runa_error("not_found"), OrderDeclined, "does not know"),
        (
            400,
            runa_error("idempotency_validation_error"),
            IdempotencyConflict,
            "already used",
        ),
        (400, runa_error("insufficient_funds"), InsufficientFunds, "top it up"),
        (
            400,
            runa_error("product_validation_error", "Not allowed to order products: AMZ-US"),
            InvalidProduct,
            "AMZ-US",
        ),
        (400, runa_error("currency_mismatch"), OrderDeclined, "currency"),
        (400, runa_error("payment_method_unavailable"), OrderDeclined, "RUNA_PAYMENT_METHOD"),
        (400, runa_error("invalid_card_id"), OrderDeclined, "card"),
        (400, runa_error("currency_not_supported"), OrderDeclined, "currency"),
        (400, runa_error("invalid_execution_mode"), OrderDeclined, "RUNA_EXECUTION_MODE"),
        (400, runa_error("insecure_protocol"), OrderDeclined, "HTTPS"),
        (400, runa_error("something_new"), OrderDeclined, "HTTP 400, something_new"),
        (418, {"unexpected": True}, OrderDeclined, "HTTP 418"),
        (403, {}, AuthenticationFailed, "API key"),
        (
            422,
            {
                "type": "validation_error",
                "message": "There were problems",
                "details": [
                    {
                        "type": "value_error.number.not_ge",
                        "message": "ensure this value is greater than or equal to 1",
                        "location": ["items", 0, "face_value"],
                    }
                ],
            },
            InvalidProduct,
            "items.0.face_value: ensure this value",
        ),
        (
            422,
            {
                "type": "validation_error",
                "message": "There were problems",
                "details": [
                    {"type": "missing", "message": "field required", "location": ["metadata"]}
                ],
            },
            OrderDeclined,
            "metadata: field required",
        ),
        (422, {"type": "validation_error"}, OrderDeclined, "no details"),
    ],
)
async def test_each_documented_error_maps_to_the_taxonomy(
    runa: Runa, status: int, body: dict[str, Any], error: type[ProviderError], text: str
) -> None:
    runa.fake.error_next(status, body)
    with pytest.raises(error, match=text) as caught:
        await runa.provider.place_order(order())
    assert type(caught.value) is error
    assert secret_free(caught.value.message)
    assert len(runa.fake.order_posts) == 1, "a refusal is final: no retry"
    assert not runa.fake.orders


async def test_vendor_text_in_a_refusal_has_no_links(runa: Runa) -> None:
    runa.fake.error_next(
        400,
        runa_error("product_validation_error", "Not allowed: see https://x.example/a?token=1"),
    )
    with pytest.raises(InvalidProduct) as caught:
        await runa.provider.place_order(order())
    assert "https://" not in caught.value.message and "token=1" not in caught.value.message


# -- retries: no duplicate orders ----------------------------------------------------------


async def test_a_dropped_connection_after_the_order_is_retried_into_the_same_order(
    runa: Runa,
) -> None:
    runa.fake.drop_next_after_processing()
    result = await settle(runa.provider, await runa.provider.place_order(order()))
    assert result.state is OrderState.COMPLETED
    assert len(runa.fake.orders) == 1
    first, second = runa.fake.order_posts
    assert first.body == second.body
    assert first.headers["X-Idempotency-Key"] == second.headers["X-Idempotency-Key"]
    assert result.provider_order_id == runa.fake.only_order().id


async def test_a_proxy_5xx_is_retried_with_the_same_key_into_one_order(runa: Runa) -> None:
    runa.fake.fail_next_with(503, error_type=None)
    runa.fake.fail_next_with(502, error_type=None)
    result = await runa.provider.place_order(order())
    assert result.provider_order_id == runa.fake.only_order().id
    posts = runa.fake.order_posts
    assert len(posts) == 3
    assert len({p.body for p in posts}) == 1
    assert len({p.headers["X-Idempotency-Key"] for p in posts}) == 1


async def test_a_proxy_5xx_that_persists_is_retryable_for_the_bot(runa: Runa) -> None:
    for _ in range(3):
        runa.fake.fail_next_with(503, error_type=None)
    with pytest.raises(ProviderUnavailable, match="server error"):
        await runa.provider.place_order(order())
    assert not runa.fake.orders
    result = await runa.provider.place_order(order())  # the bot's later attempt
    assert result.provider_order_id == runa.fake.only_order().id


async def test_a_runa_5xx_that_is_not_replayed_is_retried_into_one_order(runa: Runa) -> None:
    runa.fake.cache_server_errors = False  # handling-errors.mdx's reading
    runa.fake.fail_next_with(500, "internal_server_error")
    result = await runa.provider.place_order(order())
    assert result.provider_order_id == runa.fake.only_order().id
    assert len(runa.fake.order_posts) == 2


async def test_a_replayed_runa_5xx_without_an_order_is_an_unknown_outcome(runa: Runa) -> None:
    runa.fake.fail_next_with(500, "internal_server_error")  # cached for the key
    with pytest.raises(OutcomeUnknown, match="rewardbot-1") as caught:
        await runa.provider.place_order(order())
    assert not runa.fake.orders
    assert len(runa.fake.order_posts) == FAST.attempts
    assert any(r.method == "GET" and r.path == "/v2/order" for r in runa.fake.requests)
    assert "Runa portal" in caught.value.message


async def test_a_replayed_runa_5xx_after_the_order_was_placed_finds_the_order(
    runa: Runa,
) -> None:
    runa.fake.completion_delay = 0
    runa.fake.fail_next_with(504, "timeout", after_processing=True)
    result = await runa.provider.place_order(order())
    fake_order = runa.fake.only_order()
    assert result.state is OrderState.COMPLETED
    assert result.provider_order_id == fake_order.id
    assert result.redemption is not None and result.redemption.url is not None
    assert result.redemption.url.get_secret_value() == fake_order.link
    assert len(runa.fake.order_posts) == FAST.attempts


async def test_the_lookup_ignores_an_order_with_our_reference_but_another_key(
    runa: Runa,
) -> None:
    runa.fake.completion_delay = 0
    # Another deployment sharing the Runa account used the same reference.
    await runa.provider.place_order(order(key="someone-elses-key"))
    runa.fake.fail_next_with(500, "internal_server_error")
    with pytest.raises(OutcomeUnknown):
        await runa.provider.place_order(order(key="our-key"))
    assert len(runa.fake.orders) == 1


async def test_a_429_waits_as_long_as_retry_after_says(runa: Runa) -> None:
    runa.fake.rate_limit_next(retry_after="0.3")
    started = time.monotonic()
    result = await runa.provider.place_order(order())
    assert time.monotonic() - started >= 0.3
    assert result.provider_order_id == runa.fake.only_order().id
    assert len(runa.fake.order_posts) == 2


class RecordingPacer:
    """A :class:`~providers.base.CallPacer` that lets every call go at once and records what
    it was told."""

    def __init__(self) -> None:
        self.told: list[tuple[str, str, float | None]] = []

    async def before_call(self, provider: str, requests_per_minute: int | None) -> None:
        self.told.append(("turn", provider, requests_per_minute))

    async def before_order(self, provider: str, orders_per_minute: int) -> None:
        self.told.append(("order turn", provider, orders_per_minute))

    async def rate_limited(self, provider: str, retry_after: float) -> None:
        self.told.append(("429", provider, retry_after))


async def test_each_attempt_takes_a_turn_and_a_429_holds_every_process_off(runa: Runa) -> None:
    pacer = RecordingPacer()
    runa.provider.pace_calls(pacer)
    runa.fake.rate_limit_next(retry_after="0.05")
    await runa.provider.place_order(order())
    # The hold-off is checked last, right before the send: an order that waited for its
    # turn while another call met a 429 still waits that out.
    assert pacer.told == [
        ("order turn", "runa", 300),
        ("turn", "runa", None),
        ("429", "runa", pytest.approx(0.05)),
        ("order turn", "runa", 300),
        ("turn", "runa", None),
    ]
    # Reading an order back is no order: only a 429's wait applies to it.
    pacer.told.clear()
    await runa.provider.get_order(runa.fake.only_order().id)
    assert pacer.told == [("turn", "runa", None)]


async def test_a_429_without_retry_after_uses_the_default_wait(runa: Runa) -> None:
    for _ in range(3):
        runa.fake.rate_limit_next()
    with pytest.raises(RateLimited) as caught:
        await runa.adapter(rate_limit_wait=0.02).place_order(order())
    assert caught.value.retry_after == pytest.approx(0.02)
    assert not runa.fake.orders


async def test_idempotency_in_progress_is_waited_for_and_replayed(runa: Runa) -> None:
    runa.fake.in_progress_next(400)
    started = time.monotonic()
    result = await runa.adapter(in_progress_wait=0.2).place_order(order())
    assert time.monotonic() - started >= 0.2
    assert result.provider_order_id == runa.fake.only_order().id


async def test_idempotency_in_progress_that_persists_is_retryable(runa: Runa) -> None:
    for _ in range(3):
        runa.fake.in_progress_next(400)
    with pytest.raises(RetryableProviderError, match="still processing") as caught:
        await runa.provider.place_order(order())
    assert isinstance(caught.value, RateLimited)  # the bot waits ``retry_after`` too


async def test_a_literal_http_102_times_out_and_is_replayed(runa: Runa) -> None:
    runa.fake.in_progress_next(102)
    async with httpx.AsyncClient(timeout=0.3) as impatient:
        adapter = RunaProvider(
            impatient, api_key=SecretStr(API_KEY), base_url=runa.url + "/v2", retry=FAST
        )
        result = await adapter.place_order(order())
    assert result.provider_order_id == runa.fake.only_order().id


# -- reading an order back -------------------------------------------------------------------


async def test_an_order_runa_no_longer_knows_is_an_unknown_outcome(runa: Runa) -> None:
    with pytest.raises(OutcomeUnknown, match="O-MISSING"):
        await runa.provider.get_order("O-MISSING")


async def test_a_revoked_key_while_polling_is_an_unknown_outcome_not_a_refusal(
    runa: Runa,
) -> None:
    placed = await runa.provider.place_order(order())
    runa.fake.api_key = "rotated"
    with pytest.raises(OutcomeUnknown, match=placed.provider_order_id):
        await runa.provider.get_order(placed.provider_order_id)


async def test_a_server_error_while_polling_is_retryable(runa: Runa) -> None:
    placed = await runa.provider.place_order(order())
    for _ in range(3):
        runa.fake.error_next(500, runa_error("internal_server_error"))
    with pytest.raises(ProviderUnavailable):
        await runa.provider.get_order(placed.provider_order_id)
    assert (await settle(runa.provider, placed)).state is OrderState.COMPLETED


async def test_a_cancelled_payout_link_needs_a_human(runa: Runa) -> None:
    placed = await runa.provider.place_order(order())
    runa.fake.only_order().items[0].payout_status = "CANCELLED"
    with pytest.raises(OutcomeUnknown, match="cancelled"):
        await settle(runa.provider, placed)


def shared_order(*amounts: str) -> SharedOrder:
    return SharedOrder(
        idempotency_key="rewardbot-1-shared",
        product_id="COFFEE-GB",
        reference="rewardbot-1",
        message="For shipping the release",
        lines=tuple(
            OrderLine(
                recipient=Recipient(slack_user_id=f"U{i}", name=f"Person {i}"),
                face_value=Money(amount=Decimal(amount), currency="GBP"),
            )
            for i, amount in enumerate(amounts)
        ),
    )


async def test_a_shared_order_is_one_order_with_a_payout_link_per_line(runa: Runa) -> None:
    runa.fake.drop_next_after_processing()  # the answer is lost: the replay is the same order
    result = await settle(
        runa.provider, await runa.provider.place_shared_order(shared_order("25", "40", "25"))
    )
    [order] = runa.fake.orders.values()
    assert [i["face_value"] for i in json.loads(runa.fake.order_posts[0].body)["items"]] == [
        25,
        40,
        25,
    ]
    assert len(runa.fake.order_posts) == 2
    assert result.state is OrderState.COMPLETED and result.redemption is None
    assert [(c.card_id, c.face_value) for c in result.cards] == [
        (item.id, item.face_value) for item in order.items
    ]
    links = [
        c.redemption.url.get_secret_value()
        for c in result.cards
        if c.redemption and c.redemption.url
    ]
    assert links == order.links and len(set(links)) == 3
    assert result.charged == Money(amount=order.price, currency="GBP")


async def test_an_unusable_link_in_a_shared_order_is_a_card_without_its_link(
    runa: Runa,
) -> None:
    placed = await runa.provider.place_shared_order(shared_order("25", "40"))
    [order] = runa.fake.orders.values()
    order.items[1].payout_status = "EXPIRED"
    result = await settle(runa.provider, placed)
    assert [(c.card_id, c.redemption is not None) for c in result.cards] == [
        (order.items[0].id, True),
        (order.items[1].id, False),
    ]


async def test_an_unreadable_answer_is_retryable_and_hides_the_body(runa: Runa) -> None:
    placed = await runa.provider.place_order(order())
    runa.fake.completion_delay = 0
    for _ in range(3):
        runa.fake.error_next(200, {"status": "COMPLETED", "url": LINK_PREFIX + "leak"})
    with pytest.raises(ProviderUnavailable, match="could not read") as caught:
        await runa.provider.get_order(placed.provider_order_id)
    assert secret_free(str(caught.value))


# -- secrets -------------------------------------------------------------------------------


async def test_secrets_stay_out_of_reprs(runa: Runa) -> None:
    result = await settle(runa.provider, await runa.provider.place_order(order()))
    link = runa.fake.only_order().link
    for text in (repr(runa.provider), str(vars(runa.provider)), repr(result), str(result)):
        assert API_KEY not in text
        assert link not in text
        assert runa.fake.webhook_secret.removeprefix("whsec_") not in text
        raw_key = base64.b64decode(runa.fake.webhook_secret.removeprefix("whsec_"))
        assert repr(raw_key)[2:-1] not in text


# -- settings ------------------------------------------------------------------------------


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in (
        "RUNA_API_KEY",
        "RUNA_API_URL",
        "RUNA_WEBHOOK_SECRET",
        "RUNA_PAYMENT_METHOD",
        "RUNA_PAYMENT_CURRENCY",
        "RUNA_EXECUTION_MODE",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


async def test_from_env_defaults_to_production(env: pytest.MonkeyPatch) -> None:
    env.setenv("RUNA_API_KEY", API_KEY)
    async with httpx.AsyncClient() as http:
        provider = RunaProvider.from_env(http)
    assert PRODUCTION_URL == "https://api.runa.io/v2"
    assert repr(provider) == f"RunaProvider(base_url='{PRODUCTION_URL}', webhooks=off)"
    with pytest.raises(WebhookRejected, match="RUNA_WEBHOOK_SECRET"):
        await provider.parse_webhook({}, b"{}")


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({}, "RUNA_API_KEY is required"),
        ({"RUNA_API_KEY": "  "}, "RUNA_API_KEY must not be empty"),
        ({"RUNA_API_KEY": "k", "RUNA_API_URL": "http://api.runa.io/v2"}, "RUNA_API_URL"),
        ({"RUNA_API_KEY": "k", "RUNA_API_URL": "api.runa.io"}, "RUNA_API_URL"),
        ({"RUNA_API_KEY": "k", "RUNA_WEBHOOK_SECRET": "whsec_***"}, "RUNA_WEBHOOK_SECRET"),
        ({"RUNA_API_KEY": "k", "RUNA_PAYMENT_METHOD": "CARD"}, "RUNA_PAYMENT_METHOD"),
        ({"RUNA_API_KEY": "k", "RUNA_PAYMENT_CURRENCY": "POUNDS"}, "RUNA_PAYMENT_CURRENCY"),
        ({"RUNA_API_KEY": "k", "RUNA_EXECUTION_MODE": "later"}, "RUNA_EXECUTION_MODE"),
    ],
)
async def test_from_env_names_the_variable_to_fix(
    env: pytest.MonkeyPatch, settings: dict[str, str], named: str
) -> None:
    for name, value in settings.items():
        env.setenv(name, value)
    async with httpx.AsyncClient() as http:
        with pytest.raises(ProviderConfigError, match=named) as caught:
            RunaProvider.from_env(http)
    assert "whsec_***" not in str(caught.value)


async def test_from_env_reads_every_setting(env: pytest.MonkeyPatch, runa: Runa) -> None:
    env.setenv("RUNA_API_KEY", API_KEY)
    env.setenv("RUNA_API_URL", runa.url + "/v2/")
    env.setenv("RUNA_WEBHOOK_SECRET", runa.fake.webhook_secret)
    env.setenv("RUNA_PAYMENT_CURRENCY", "GBP")
    env.setenv("RUNA_EXECUTION_MODE", "sync")
    provider = RunaProvider.from_env(runa.http)
    result = await provider.place_order(order())
    assert result.state is OrderState.COMPLETED
    assert runa.fake.order_posts[0].headers["X-Execution-Mode"] == "sync"
    body = b"{}"
    assert await provider.parse_webhook(sign_webhook(runa.fake.webhook_secret, body), body) is None


# -- webhooks ------------------------------------------------------------------------------


async def completed_order_webhook(runa: Runa) -> tuple[str, bytes]:
    runa.fake.completion_delay = 0
    placed = await runa.provider.place_order(order())
    await settle(runa.provider, placed)
    return placed.provider_order_id, runa.fake.completion_webhook(placed.provider_order_id)


async def test_a_signed_order_completion_webhook_names_the_order(runa: Runa) -> None:
    order_id, body = await completed_order_webhook(runa)
    notice = await runa.provider.parse_webhook(sign_webhook(runa.fake.webhook_secret, body), body)
    assert notice is not None and notice.provider_order_id == order_id


async def test_a_failed_order_webhook_names_the_order(runa: Runa) -> None:
    runa.fake.fail_next_order_async()
    runa.fake.completion_delay = 0
    placed = await runa.provider.place_order(order())
    body = runa.fake.completion_webhook(placed.provider_order_id)
    notice = await runa.provider.parse_webhook(sign_webhook(runa.fake.webhook_secret, body), body)
    assert notice is not None and notice.provider_order_id == placed.provider_order_id


async def test_svix_header_names_and_several_signatures_are_accepted(runa: Runa) -> None:
    order_id, body = await completed_order_webhook(runa)
    signed = sign_webhook(runa.fake.webhook_secret, body)
    headers = {
        "Svix-Id": signed["webhook-id"],
        "Svix-Timestamp": signed["webhook-timestamp"],
        "Svix-Signature": "v1,bm90IGl0 v2,abc " + signed["webhook-signature"],
    }
    notice = await runa.provider.parse_webhook(headers, body)
    assert notice is not None and notice.provider_order_id == order_id


async def test_a_product_update_webhook_is_authentic_but_not_about_an_order(runa: Runa) -> None:
    body = b'{"product_code": "PRCODE-GB", "old_state": {}, "new_state": {}}'
    headers = sign_webhook(runa.fake.webhook_secret, body)
    assert await runa.provider.parse_webhook(headers, body) is None


def other_secret() -> str:
    return "whsec_" + base64.b64encode(b"not the right secret at all").decode()


@pytest.mark.parametrize(
    ("tamper", "text"),
    [
        (lambda h, b: (sign_webhook(other_secret(), b), b), "signature does not match"),
        (lambda h, b: (h, b.replace(b"COMPLETED", b"FAILED")), "signature does not match"),
        (lambda h, b: (h | {"webhook-id": "msg_other"}, b), "signature does not match"),
        (lambda h, b: (h | {"webhook-signature": "v2," + h["webhook-signature"][3:]}, b), "sig"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b), "missing"),
        (lambda h, b: (h | {"webhook-timestamp": "soon"}, b), "not a number"),
    ],
)
async def test_an_unauthentic_webhook_is_rejected(runa: Runa, tamper: Any, text: str) -> None:
    _, body = await completed_order_webhook(runa)
    headers, body = tamper(sign_webhook(runa.fake.webhook_secret, body), body)
    with pytest.raises(WebhookRejected, match=text):
        await runa.provider.parse_webhook(headers, body)


@pytest.mark.parametrize("skew", [-301, 301])
async def test_a_webhook_outside_five_minutes_is_rejected(runa: Runa, skew: int) -> None:
    _, body = await completed_order_webhook(runa)
    headers = sign_webhook(runa.fake.webhook_secret, body, timestamp=int(time.time()) + skew)
    with pytest.raises(WebhookRejected, match="too old or in the future"):
        await runa.provider.parse_webhook(headers, body)


async def test_a_webhook_inside_five_minutes_is_accepted(runa: Runa) -> None:
    _, body = await completed_order_webhook(runa)
    headers = sign_webhook(runa.fake.webhook_secret, body, timestamp=int(time.time()) - 280)
    assert await runa.provider.parse_webhook(headers, body) is not None


async def test_an_authentic_webhook_that_is_not_json_is_rejected(runa: Runa) -> None:
    body = b"not json"
    with pytest.raises(WebhookRejected, match="not JSON"):
        await runa.provider.parse_webhook(sign_webhook(runa.fake.webhook_secret, body), body)


async def test_webhooks_are_refused_without_a_secret(runa: Runa) -> None:
    body = b"{}"
    headers = sign_webhook(runa.fake.webhook_secret, body)
    with pytest.raises(WebhookRejected, match="RUNA_WEBHOOK_SECRET"):
        await runa.adapter(webhook_secret=None).parse_webhook(headers, body)
