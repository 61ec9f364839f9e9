"""Runa's catalog and orders in domain terms: products, the order body, and what an order
answer means (links, cards, the price)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import InvalidOperation
from typing import Any

from pydantic import SecretStr, ValidationError

from bot.domain import Money
from providers.base import IssuedCard, OrderResult, OrderState, Product, Redemption, SharedOrder
from providers.errors import OutcomeUnknown
from providers.runa._json import _Item, _Order, _Product

log = logging.getLogger(__name__)


def _product(provider: str, raw: dict[str, Any]) -> Product | None:
    """One orderable gift card, or ``None`` (logged) for what the bot cannot offer."""
    try:
        vendor = _Product.model_validate(raw)
    except ValidationError:
        log.warning("runa catalog: skipped an unreadable product %r", raw.get("code"))
        return None
    if not vendor.is_orderable or vendor.payout_type != "gift_card":
        return None
    denominations = vendor.gift_card.denominations if vendor.gift_card else None
    try:
        if denominations is None:
            raise ValueError("no denominations")
        if denominations.type not in ("fixed", "open"):
            raise ValueError(f"unknown denomination type {denominations.type!r}")
        fixed = denominations.type == "fixed"
        return Product.from_face_values(
            provider=provider,
            product_id=vendor.code,
            name=vendor.name,
            currency=vendor.currency,
            fixed=denominations.available_list if fixed else None,
            min_value=None if fixed else denominations.minimum_value,
            max_value=None if fixed else denominations.maximum_value,
        )
    except ValueError as exc:
        log.warning("runa catalog: skipped product %s (%s)", vendor.code, exc)
        return None


def _order_body(order: SharedOrder, payment_currency: str | None) -> dict[str, Any]:
    """The order as Runa wants it, an item per line, paid from the ``payment_currency``
    balance (default: the card's currency); the same arguments always give the same body."""
    metadata = {"rewardbot_reference": order.reference[:200]}
    if len(order.idempotency_key) <= 200:
        metadata["rewardbot_idempotency_key"] = order.idempotency_key
    return {
        "payment_method": {
            "type": "ACCOUNT_BALANCE",
            "currency": payment_currency or order.lines[0].face_value.currency,
        },
        "items": [
            {
                "face_value": line.face_value.amount,
                "distribution_method": {"type": "PAYOUT_LINK"},
                "products": {"type": "SINGLE", "value": order.product_id},
            }
            for line in order.lines
        ],
        "description": order.reference[:128],
        "metadata": metadata,
    }


def _result(order: _Order, vendor_text: Callable[[str | None], str]) -> OrderResult:
    """The domain view of an order; ``vendor_text`` makes Runa's words fit to show."""
    if order.status == "FAILED":
        reason = vendor_text(order.message)
        return OrderResult(
            provider_order_id=order.id,
            state=OrderState.FAILED,
            failure_reason=f"Runa could not issue the card: {reason}"
            if reason
            else "Runa could not issue the card.",
        )
    if order.status != "COMPLETED":
        if order.status != "PROCESSING":
            log.warning("runa order %s has unknown status %r", order.id, order.status)
        return OrderResult(provider_order_id=order.id, state=OrderState.PENDING)
    items = order.items or []
    if not items:
        raise OutcomeUnknown(
            f"Runa order {order.id} completed without payout links; check it in the Runa portal."
        )
    return OrderResult(
        provider_order_id=order.id,
        state=OrderState.COMPLETED,
        # One item: the order's only card. Several: a shared order, whose recipients find
        # theirs among the cards.
        redemption=_redemption(order.id, items[0]) if len(items) == 1 else None,
        cards=tuple(_card(order.id, item) for item in items),
        charged=_charged(order),
    )


def _card(order_id: str, item: _Item) -> IssuedCard:
    """An item as a card; an unusable link stays in the list without its redemption, so
    the recipients' cards keep their places (its recipient needs review)."""
    try:
        redemption: Redemption | None = _redemption(order_id, item)
    except OutcomeUnknown as unusable:
        log.warning("runa order %s, item %s: %s", order_id, item.id, unusable.message)
        redemption = None
    return IssuedCard(card_id=item.id or "", face_value=item.face_value, redemption=redemption)


def _redemption(order_id: str, item: _Item) -> Redemption:
    payout = item.payout
    url = (payout.url or "").strip() if payout else ""
    if payout is None or not url:
        raise OutcomeUnknown(
            f"Runa order {order_id} completed without a payout link; check it in the Runa portal."
        )
    if payout.status in ("CANCELLED", "EXPIRED"):
        raise OutcomeUnknown(
            f"Runa order {order_id} completed but its payout link is "
            f"{str(payout.status).lower()}; check it in the Runa portal."
        )
    return Redemption(url=SecretStr(url))


def _charged(order: _Order) -> Money | None:
    if order.total_price is None or order.currency is None:
        return None
    try:
        return Money(amount=order.total_price, currency=order.currency)
    except (ValidationError, InvalidOperation):
        log.warning("runa order %s: unreadable total price", order.id)
        return None
