"""CardPlusPay's orders in domain terms: the purchase body, and what an order answer means."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from bot.domain import Money
from providers.base import OrderRequest, OrderResult, OrderState, Redemption
from providers.cardpluspay._identity import _Identity
from providers.cardpluspay._json import _Order
from providers.errors import OrderDeclined, OutcomeUnknown

_FAILED_STATUSES = frozenset(
    {"failed", "cancelled", "canceled", "refunded", "rejected", "declined", "expired", "error"}
)
_PIN_KEYS = frozenset({"pin", "pin_code", "pincode"})
_URL_KEYS = frozenset({"url", "redemption_url", "redeem_url", "link"})


def _order_body(order: OrderRequest) -> dict[str, Any]:
    """``POST /orders``: one item to the recipient's email (which CardPlusPay needs)."""
    email = (order.recipient.email or "").strip()
    if not email:
        raise OrderDeclined(
            "CardPlusPay needs the recipient's email address, and their Slack profile shows none."
        )
    return {"item_code": order.product_id, "quantity": 1, "email": email}


def _result(
    placed: _Order, order: OrderRequest | None, charged_for: Callable[[_Order], Money | None]
) -> OrderResult:
    """The domain view of an order; ``order`` (when we just bought it) is checked too.
    ``charged_for`` reads what it cost (once the order is known not to have failed)."""
    order_id = str(placed.order_id)
    status = (placed.status or "").strip().lower()
    if status in _FAILED_STATUSES:
        return OrderResult(
            provider_order_id=order_id,
            state=OrderState.FAILED,
            failure_reason=f"CardPlusPay reports order {placed.label} as {status}.",
        )
    codes = [c for c in placed.codes if c.code is not None]
    if len(codes) > 1 or (order is not None and not _as_ordered(placed, order)):
        raise OutcomeUnknown(
            f"CardPlusPay order {placed.label} is not the one card that was approved. "
            "It may have been paid: a person must check the CardPlusPay dashboard."
        )
    code_status = (codes[0].status or "completed").strip().lower() if codes else ""
    if code_status in _FAILED_STATUSES:
        return OrderResult(
            provider_order_id=order_id,
            state=OrderState.FAILED,
            failure_reason=f"CardPlusPay reports the card of order {placed.label} as "
            f"{code_status}.",
        )
    charged = charged_for(placed)
    if status != "completed" or not codes or code_status != "completed":
        return OrderResult(provider_order_id=order_id, state=OrderState.PENDING, charged=charged)
    code = codes[0]
    return OrderResult(
        provider_order_id=order_id,
        state=OrderState.COMPLETED,
        redemption=Redemption(
            code=code.code,
            pin=code.pin or code.meta(_PIN_KEYS),
            url=code.url or code.redemption_url or code.redeem_url or code.meta(_URL_KEYS),
        ),
        charged=charged,
    )


def _as_ordered(placed: _Order, order: OrderRequest) -> bool:
    """Whether what CardPlusPay issued is the approved item and face value."""
    identity = _Identity.of(placed)
    if identity.item_code is not None and identity.item_code != order.product_id:
        return False
    return identity.face is None or identity.face == order.face_value.amount


def _charged_of(placed: _Order) -> Money | None:
    """What this reading of the order says it cost (its codes' charged amounts, or the
    order's amount), if it says so in one currency."""
    currencies = {(c.currency or "").strip().upper() for c in placed.codes}
    amounts = [c.charged_amount for c in placed.codes]
    money: Money | None = None
    if (
        len(currencies) == 1
        and (currency := currencies.pop())
        and re.fullmatch(r"[A-Z]{3}", currency)
    ):
        if placed.codes and all(a is not None for a in amounts):
            money = Money(amount=sum((a for a in amounts if a), Decimal(0)), currency=currency)
        elif placed.amount is not None:
            money = Money(amount=placed.amount, currency=currency)
    return money
