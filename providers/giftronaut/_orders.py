"""Giftronaut's catalog and orders in domain terms: products, idempotency keys, the order
body, and what an order answer means."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from bot.domain import Money
from providers.base import IssuedCard, OrderResult, OrderState, Product, SharedOrder
from providers.errors import InvalidProduct, OrderDeclined, OutcomeUnknown
from providers.giftronaut._errors import _safe_code
from providers.giftronaut._json import _CatalogItem, _Order

log = logging.getLogger(__name__)

MAX_KEY_LENGTH = 64
_KEY_OK = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_HASHED_KEY_PREFIX = "rewardbot-sha256-"
_KINDS = {"branded": "BRANDED_CARD", "choice": "CHOICE_CARD"}
_PENDING_STATUSES = frozenset({"PENDING", "IN_PROGRESS"})


def giftronaut_key(idempotency_key: str) -> str:
    """The key sent to Giftronaut (≤ 64 characters), the same for the same bot key, always.

    Keys that already fit (``[A-Za-z0-9._:-]``, at most 64 characters) are sent unchanged, so
    Giftronaut's order list can be matched with the bot's requests; others are hashed.
    """
    if _KEY_OK.fullmatch(idempotency_key):
        return idempotency_key
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()
    return _HASHED_KEY_PREFIX + digest[: MAX_KEY_LENGTH - len(_HASHED_KEY_PREFIX)]


class ScheduledSend(BaseModel):
    """Send the card at a local wall-clock time instead of at once (``sendTiming: SCHEDULED``)."""

    model_config = ConfigDict(frozen=True)

    # Local time in ``timezone``, without an offset (Giftronaut's ``scheduledAt``).
    at: datetime
    # An IANA zone such as ``America/New_York``.
    timezone: str

    @field_validator("at")
    @classmethod
    def _naive(cls, value: datetime) -> datetime:
        if value.tzinfo is not None:
            raise ValueError("give the local time without an offset; the zone goes in timezone")
        return value.replace(microsecond=0)

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            # A folder of the zone database ("Europe") fails to open instead of being missing.
            raise ValueError(f"{value!r} is not an IANA time zone") from None
        return value


def _product(provider: str, kind: str, entry: object) -> Product | None:
    try:
        item = _CatalogItem.model_validate(entry)
    except ValidationError:
        ident = entry.get("productId", entry.get("id")) if isinstance(entry, dict) else None
        log.warning("%s: skipped unreadable %s catalog item %r", provider, kind, ident)
        return None
    currency = (item.currency or ("USD" if kind == "choice" else "")).upper()
    name = item.name or f"Giftronaut {item.product_id}"
    if kind == "choice":
        name = f"{name} (choice card)"
    fixed, low, high = item.prices, item.min_value, item.max_value
    if low is not None and high is not None:
        fixed = None  # a range wins over a price list
    elif kind == "choice" and item.prices and len(item.prices) == 2:
        fixed, low, high = None, min(item.prices), max(item.prices)
    try:
        return Product.from_face_values(
            provider=provider,
            product_id=f"{kind}:{item.product_id}",
            name=name,
            currency=currency,
            fixed=fixed,
            min_value=low,
            max_value=high,
        )
    except ValueError:
        log.warning("%s: skipped %s catalog item %r", provider, kind, item.product_id)
        return None


def _split_product_id(product_id: str) -> tuple[str, str]:
    kind, _, vendor_id = product_id.partition(":")
    if kind not in _KINDS or not vendor_id:
        raise InvalidProduct(f"{product_id!r} is not a Giftronaut card.")
    return kind, vendor_id


def _order_body(
    order: SharedOrder,
    key: str,
    product_id: str,
    schedule: ScheduledSend | None,
    *,
    sender_name: str,
    refund_option: bool,
) -> dict[str, Any]:
    """The order create body: a ``recipients[]`` entry per line, sent at once or on
    ``schedule``."""
    recipients = []
    for line in order.lines:
        email = (line.recipient.email or "").strip()
        if "@" not in email:
            raise OrderDeclined(
                f"Giftronaut emails the card, but {line.recipient.name} has no email address."
            )
        recipients.append({"email": email, "amount": line.face_value.amount})
    timing: dict[str, str] = {"type": "IMMEDIATE"}
    if schedule is not None:
        timing = {
            "type": "SCHEDULED",
            "scheduledAt": schedule.at.isoformat(timespec="seconds"),
            "timezone": schedule.timezone,
        }
    email_setting = {
        "senderName": sender_name,
        "subject": f"You have received a gift card from {sender_name}",
    }
    if order.message.strip():
        email_setting["message"] = order.message
    return {
        "idempotencyKey": key,
        "productId": product_id,
        "sendTiming": timing,
        "emailSetting": email_setting,
        "recipients": recipients,
        "refundOption": refund_option,
    }


def _result(placed: _Order) -> OrderResult:
    """The domain view of an order."""
    status = placed.status.upper()
    if status in _PENDING_STATUSES:
        return OrderResult(provider_order_id=placed.order_id, state=OrderState.PENDING)
    if status == "COMPLETE":
        # One entry per issued card: a recipient missing from the list got none.
        return OrderResult(
            provider_order_id=placed.order_id,
            state=OrderState.COMPLETED,
            delivered_by_provider=True,
            charged=_charged(placed),
            cards=tuple(IssuedCard(email=email.strip().lower()) for email in placed.emails),
        )
    if status == "CANCELED":
        return OrderResult(
            provider_order_id=placed.order_id,
            state=OrderState.FAILED,
            failure_reason="Giftronaut cancelled the order; no card was sent.",
        )
    raise OutcomeUnknown(
        f"Giftronaut reports order {placed.order_id} as {_safe_code(placed.status)!s}, "
        "a status we do not know. Check the order in Giftronaut's portal."
    )


def _charged(placed: _Order) -> Money | None:
    if placed.total_cost is None:
        return None
    try:
        return Money(amount=placed.total_cost.amount, currency=placed.total_cost.currency.upper())
    except ValidationError:
        log.warning("giftronaut: unreadable totalCost on order %s", placed.order_id)
        return None
