"""An offline, deterministic provider that behaves like a real one, for demos and trials.

Behaviour, as a real provider's docs would state it:

* Catalog: four products in GBP, USD and EUR, with fixed and ranged face values.
* Idempotency: an order placed again with the same key returns the same order; the same key with
  a different product or amount is refused (:class:`~providers.errors.IdempotencyConflict`).
* Asynchronous completion: a new order is ``pending`` and completes ``completion_delay`` seconds
  later; poll :meth:`SandboxProvider.get_order`.
* Like a real provider's server, it is the same in every process: an order's id says what was
  ordered and when (the key's first send, from the bot's durable :class:`SendLog`), so another
  process, or one restarted, replays and reads the same order.
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

Redemption links are derived from the order id, so every reading and every resend of an order
gives the same link. They redeem nothing: the sandbox issues no real card.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
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
    SendLog,
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


class SandboxProvider(Provider):
    """See the module docstring for the documented behaviour."""

    name: ClassVar[str] = _NAME

    def __init__(self, completion_delay: float = 0.5) -> None:
        self.completion_delay = completion_delay
        self.poll_interval = max(completion_delay / 4, 0.01)
        # What this process placed, by key (replays excluded), for tests and the demo.
        self._placed: dict[str, str] = {}
        self._lock = asyncio.Lock()

    @classmethod
    def from_env(cls, http: httpx.AsyncClient) -> Self:
        """The sandbox needs no settings and makes no HTTP calls."""
        return cls()

    @property
    def order_count(self) -> int:
        """How many distinct orders this process placed (replays excluded)."""
        return len(set(self._placed.values()))

    async def list_products(self) -> list[Product]:
        return list(CATALOG)

    async def place_order(self, order: OrderRequest, sends: SendLog | None = None) -> OrderResult:
        sends = sends or SendLog()
        async with self._lock:
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
            body = f"{order.product_id}|{order.face_value.amount}|{order.face_value.currency}"
            previous = self._placed.get(order.idempotency_key)
            before = await sends.sending(hashlib.sha256(body.encode()).hexdigest())
            if previous is not None and not previous.startswith(_order_prefix(order)):
                raise IdempotencyConflict(
                    "This idempotency key was already used for a different order."
                )
            placed_at = before.first_sent_at or sends.record.first_sent_at or sends.now()
            order_id = _order_id(order, placed_at)
            self._placed.setdefault(order.idempotency_key, order_id)
            return self._result(self._placed[order.idempotency_key], sends.now())

    async def get_order(self, provider_order_id: str) -> OrderResult:
        return self._result(provider_order_id, datetime.now(UTC))

    def _result(self, order_id: str, now: datetime) -> OrderResult:
        face, placed_at = _read_order_id(order_id)
        # Measured either way: a bot clock that stepped forward dates an order in the future.
        if abs(now - placed_at) < timedelta(seconds=self.completion_delay):
            return OrderResult(provider_order_id=order_id, state=OrderState.PENDING)
        if face.amount % 1 == _ASYNC_FAILURE_CENTS:
            return OrderResult(
                provider_order_id=order_id,
                state=OrderState.FAILED,
                failure_reason="The sandbox issuer failed this order (magic amount .94).",
            )
        token = hashlib.sha256(f"sandbox-link:{order_id}".encode()).hexdigest()
        return OrderResult(
            provider_order_id=order_id,
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


def _order_prefix(order: OrderRequest) -> str:
    face = order.face_value
    return f"sbx_{order.product_id}_{face.amount}_{face.currency}_"


def _order_id(order: OrderRequest, placed_at: datetime) -> str:
    """What was ordered, when, and a digest of the key: the same order in every process."""
    digest = hashlib.sha256(order.idempotency_key.encode()).hexdigest()[:16]
    return f"{_order_prefix(order)}{int(placed_at.timestamp() * 1000)}_{digest}"


def _read_order_id(order_id: str) -> tuple[Money, datetime]:
    """The face value and the time of the order an id names."""
    parts = order_id.split("_")
    try:
        assert len(parts) == 6 and parts[0] == "sbx"
        face = Money(amount=Decimal(parts[2]), currency=parts[3])
        placed_at = datetime.fromtimestamp(int(parts[4]) / 1000, tz=UTC)
    except (AssertionError, ValueError, InvalidOperation):
        raise InvalidProduct(f"No sandbox order {order_id!r}.") from None
    return face, placed_at
