"""An offline, deterministic provider that behaves like a real one, for demos and trials.

Behaviour, as a real provider's docs would state it:

* Catalog: four products in GBP, USD and EUR, with fixed and ranged face values.
* Idempotency: an order placed again with the same key returns the same order; the same key with
  a different product or amount is refused (:class:`~providers.errors.IdempotencyConflict`).
* Asynchronous completion: a new order is ``pending`` and completes ``completion_delay`` seconds
  later; poll :meth:`SandboxProvider.get_order`.
* Magic amounts, to try the failure paths (the cents of the face value decide):

  ======  =====================================================
  cents   outcome
  ======  =====================================================
  ``.91`` refused at once: declined by the issuer
  ``.92`` refused at once: out of stock
  ``.93`` refused at once: insufficient funds
  ``.94`` accepted, then fails while pending (asynchronous failure)
  ======  =====================================================

  For example 10.91 GBP on "Sandbox Books" is declined; any whole amount succeeds.

Redemption links are derived from the order id with a secret, so they are stable per order but
cannot be guessed from it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Self

import httpx
from pydantic import SecretStr

from bot.domain import Money
from providers.base import (
    OrderRequest,
    OrderResult,
    OrderState,
    Product,
    Provider,
    Redemption,
)
from providers.errors import (
    IdempotencyConflict,
    InsufficientFunds,
    InvalidProduct,
    OrderDeclined,
    OrderRefused,
    OutOfStock,
)

_NAME = "sandbox"
CATALOG: tuple[Product, ...] = (
    Product(
        provider=_NAME,
        product_id="SBX-BOOKS-GBP",
        name="Sandbox Books",
        currency="GBP",
        min_value=Decimal(5),
        max_value=Decimal(500),
    ),
    Product(
        provider=_NAME,
        product_id="SBX-COFFEE-USD",
        name="Sandbox Coffee",
        currency="USD",
        denominations=(Decimal(10), Decimal(25), Decimal(50)),
    ),
    Product(
        provider=_NAME,
        product_id="SBX-TRAVEL-EUR",
        name="Sandbox Travel",
        currency="EUR",
        min_value=Decimal(20),
        max_value=Decimal(1000),
    ),
    Product(
        provider=_NAME,
        product_id="SBX-CINEMA-GBP",
        name="Sandbox Cinema",
        currency="GBP",
        denominations=(Decimal(15), Decimal(30)),
    ),
)
_IMMEDIATE_REFUSALS: dict[Decimal, tuple[type[OrderRefused], str]] = {
    Decimal("0.91"): (OrderDeclined, "The sandbox issuer declined this card (magic amount .91)."),
    Decimal("0.92"): (OutOfStock, "This card is out of stock in the sandbox (magic amount .92)."),
    Decimal("0.93"): (InsufficientFunds, "The sandbox account has insufficient funds (magic .93)."),
}
_ASYNC_FAILURE_CENTS = Decimal("0.94")


@dataclass
class _Order:
    request: OrderRequest
    order_id: str
    created: float


class SandboxProvider(Provider):
    """See the module docstring for the documented behaviour."""

    name: ClassVar[str] = _NAME

    def __init__(self, completion_delay: float = 0.5) -> None:
        self.completion_delay = completion_delay
        self.poll_interval = max(completion_delay / 4, 0.01)
        self._link_secret = secrets.token_bytes(32)
        self._orders_by_key: dict[str, _Order] = {}
        self._orders_by_id: dict[str, _Order] = {}
        self._lock = asyncio.Lock()

    @classmethod
    def from_env(cls, http: httpx.AsyncClient) -> Self:
        """The sandbox needs no settings and makes no HTTP calls."""
        return cls()

    @property
    def order_count(self) -> int:
        """How many distinct orders were placed (replays excluded)."""
        return len(self._orders_by_id)

    async def list_products(self) -> list[Product]:
        return list(CATALOG)

    async def place_order(self, order: OrderRequest) -> OrderResult:
        async with self._lock:
            existing = self._orders_by_key.get(order.idempotency_key)
            if existing is not None:
                if self._order_body(existing.request) != self._order_body(order):
                    raise IdempotencyConflict(
                        "This idempotency key was already used for a different order."
                    )
                return self._result(existing)
            product = next((p for p in CATALOG if p.product_id == order.product_id), None)
            if product is None or product.currency != order.face_value.currency:
                raise InvalidProduct(f"Unknown sandbox product {order.product_id!r}.")
            if not product.allows(order.face_value.amount):
                raise InvalidProduct(
                    f"{order.face_value} is not allowed for {product.name}: "
                    f"{product.describe_allowed()}."
                )
            refusal = _IMMEDIATE_REFUSALS.get(order.face_value.amount % 1)
            if refusal is not None:
                error_class, message = refusal
                raise error_class(message)
            placed = _Order(order, f"sbx_{secrets.token_hex(8)}", time.monotonic())
            self._orders_by_key[order.idempotency_key] = placed
            self._orders_by_id[placed.order_id] = placed
            return self._result(placed)

    async def get_order(self, provider_order_id: str) -> OrderResult:
        placed = self._orders_by_id.get(provider_order_id)
        if placed is None:
            raise InvalidProduct(f"No sandbox order {provider_order_id!r}.")
        return self._result(placed)

    @staticmethod
    def _order_body(order: OrderRequest) -> tuple[str, Money]:
        """What the sandbox compares when a key is replayed, as real providers compare bodies."""
        return order.product_id, order.face_value

    def _result(self, placed: _Order) -> OrderResult:
        if time.monotonic() - placed.created < self.completion_delay:
            return OrderResult(provider_order_id=placed.order_id, state=OrderState.PENDING)
        if placed.request.face_value.amount % 1 == _ASYNC_FAILURE_CENTS:
            return OrderResult(
                provider_order_id=placed.order_id,
                state=OrderState.FAILED,
                failure_reason="The sandbox issuer failed this order (magic amount .94).",
            )
        token = hmac.new(self._link_secret, placed.order_id.encode(), hashlib.sha256).hexdigest()
        face = placed.request.face_value
        return OrderResult(
            provider_order_id=placed.order_id,
            state=OrderState.COMPLETED,
            redemption=Redemption(
                url=SecretStr(f"https://sandbox.rewardbot.invalid/redeem/{token[:32]}")
            ),
            # The sandbox sells at a fixed 5% discount, so charged and face value differ.
            charged=Money(
                amount=(face.amount * Decimal("0.95")).quantize(Decimal("0.01")),
                currency=face.currency,
            ),
        )
