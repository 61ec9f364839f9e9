import asyncio
from decimal import Decimal

import pytest

from bot.domain import Money
from providers.base import OrderRequest, OrderState, Recipient
from providers.errors import (
    IdempotencyConflict,
    InsufficientFunds,
    InvalidProduct,
    OrderDeclined,
    OutOfStock,
)
from providers.sandbox import SandboxProvider


def _order(key: str = "k1", amount: str = "25", product: str = "SBX-BOOKS-GBP") -> OrderRequest:
    currency = product.rsplit("-", 1)[1]
    return OrderRequest(
        idempotency_key=key,
        product_id=product,
        face_value=Money(amount=Decimal(amount), currency=currency),
        reference="test",
        recipient=Recipient(slack_user_id="U0JANE", name="Jane", email="jane@example.com"),
        message="thanks",
    )


async def test_order_completes_asynchronously_with_a_secret_link() -> None:
    sandbox = SandboxProvider(completion_delay=0.05)
    placed = await sandbox.place_order(_order())
    assert placed.state is OrderState.PENDING
    assert placed.redemption is None
    await asyncio.sleep(0.06)
    done = await sandbox.get_order(placed.provider_order_id)
    assert done.state is OrderState.COMPLETED
    assert done.redemption is not None and done.redemption.url is not None
    assert done.redemption.url.get_secret_value().startswith("https://")
    assert "redeem" not in repr(done)  # SecretStr keeps the link out of reprs and logs
    assert done.charged == Money(amount=Decimal("23.75"), currency="GBP")


async def test_same_key_replays_the_same_order() -> None:
    sandbox = SandboxProvider(completion_delay=0)
    first = await sandbox.place_order(_order())
    again = await sandbox.place_order(_order())
    assert again.provider_order_id == first.provider_order_id
    assert sandbox.order_count == 1
    other = await sandbox.place_order(_order(key="k2"))
    assert other.provider_order_id != first.provider_order_id
    assert sandbox.order_count == 2


async def test_same_key_with_another_body_is_refused() -> None:
    sandbox = SandboxProvider(completion_delay=0)
    await sandbox.place_order(_order(amount="25"))
    with pytest.raises(IdempotencyConflict):
        await sandbox.place_order(_order(amount="30"))
    assert sandbox.order_count == 1


@pytest.mark.parametrize(
    ("amount", "error"),
    [("10.91", OrderDeclined), ("10.92", OutOfStock), ("10.93", InsufficientFunds)],
)
async def test_magic_amounts_refuse(amount: str, error: type[Exception]) -> None:
    sandbox = SandboxProvider(completion_delay=0)
    with pytest.raises(error):
        await sandbox.place_order(_order(amount=amount))
    assert sandbox.order_count == 0


async def test_magic_amount_fails_asynchronously() -> None:
    sandbox = SandboxProvider(completion_delay=0)
    result = await sandbox.place_order(_order(amount="10.94"))
    assert result.state is OrderState.FAILED
    assert result.redemption is None
    assert result.failure_reason is not None and ".94" in result.failure_reason


@pytest.mark.parametrize(
    ("product", "amount"),
    [("SBX-NOPE-GBP", "25"), ("SBX-COFFEE-USD", "11"), ("SBX-BOOKS-GBP", "501")],
)
async def test_unknown_product_or_amount_is_refused(product: str, amount: str) -> None:
    with pytest.raises(InvalidProduct):
        await SandboxProvider().place_order(_order(product=product, amount=amount))


async def test_catalog_has_fixed_and_ranged_products_in_three_currencies() -> None:
    products = await SandboxProvider().list_products()
    assert {p.currency for p in products} == {"GBP", "USD", "EUR"}
    assert any(p.denominations for p in products)
    assert any(p.min_value is not None for p in products)
