"""How CardPlusPay's refusals map to the error taxonomy (by the envelope's ``message``)."""

from __future__ import annotations

import json

import httpx

from providers.errors import (
    AuthenticationFailed,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidProduct,
    OrderDeclined,
    OrderRefused,
    OutOfStock,
    ProviderUnavailable,
)

_DISPLAY = "CardPlusPay"
# How much of CardPlusPay's own message an error quotes.
_VENDOR_TEXT_LIMIT = 160


class _ServerError(ProviderUnavailable):
    """A 5xx: CardPlusPay answered, so it has finished with the request (unlike a timeout)."""


def _envelope_message(response: httpx.Response) -> str:
    """The envelope's ``message`` as the vendor wrote it (not yet fit to show)."""
    try:
        message = json.loads(response.content).get("message")
    except (ValueError, AttributeError):
        return ""
    return message if isinstance(message, str) else ""


def _said(message: str) -> str:
    return f' (CardPlusPay said: "{message}")' if message else ""


def _refusal(status: int, message: str) -> OrderRefused:
    """A 4xx (or a ``success: false`` purchase, as 400) in the taxonomy, by its message."""
    text = message.lower()
    if status in (401, 403):
        return AuthenticationFailed(
            "CardPlusPay rejected our API key (check CARDPLUSPAY_API_KEY; accounts with "
            f"request signing switched on are not supported){_said(message)}."
        )
    if status == 404:
        return InvalidProduct(f"CardPlusPay does not know this card or order{_said(message)}.")
    if status in (400, 422):
        if any(word in text for word in ("balance", "insufficient", "funds")):
            return InsufficientFunds(
                f"Our CardPlusPay balance is too low for this card{_said(message)}."
            )
        if "stock" in text or "unavailable" in text:
            return OutOfStock(f"This card is out of stock at CardPlusPay{_said(message)}.")
        if status == 400 or "item" in text or "product" in text:
            return InvalidProduct(f"CardPlusPay does not accept this card{_said(message)}.")
        return OrderDeclined(f"CardPlusPay rejected the order as invalid{_said(message)}.")
    return OrderDeclined(f"CardPlusPay refused the request (HTTP {status}){_said(message)}.")


def _check_by_hand(why: str) -> str:
    return (
        f"CardPlusPay did not confirm whether the card was bought ({why}). A person must "
        "check the CardPlusPay dashboard for this card and recipient before anything is "
        "ordered again; the bot will not retry it by itself."
    )


def _details_changed() -> IdempotencyConflict:
    """The reward's key was sent before with another body: a card may have been bought."""
    return IdempotencyConflict(
        "This reward's idempotency key was already sent to CardPlusPay with "
        "different order details (recipient email or card); a card may have been "
        "bought. Check the CardPlusPay dashboard before ordering again."
    )
