"""How Giftronaut's error answers map to the taxonomy: by their code, never their free text
(it may hold an address)."""

from __future__ import annotations

import json
import re

import httpx

from providers.errors import (
    AuthenticationFailed,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidProduct,
    OrderDeclined,
    OutcomeUnknown,
    OutOfStock,
    ProviderError,
)

_CODE_OK = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_OUT_OF_STOCK_CODES = frozenset({"OUT_OF_STOCK", "SOLD_OUT", "PRODUCT_UNAVAILABLE"})


class OrderNotCancelable(OrderDeclined):
    """Giftronaut cannot cancel the order: it was not scheduled, was sent, or is due within an
    hour (``409 ORDER_NOT_CANCELABLE``)."""


def _refusal(name: str, scope: str, response: httpx.Response) -> ProviderError:
    """A 4xx (other than 429) by its error code; ``name`` is the provider's, ``scope`` the
    scopes we asked for."""
    status = response.status_code
    code = _error_code(response)
    shown = code or f"HTTP {status}"
    method, path = response.request.method, response.request.url.path
    creating = method == "POST" and path.endswith("-cards")
    if status == 401:
        return AuthenticationFailed(
            f"{name} rejected our access token: check GIFTRONAUT_CLIENT_ID and "
            "GIFTRONAUT_CLIENT_SECRET."
        )
    if status == 403:
        return AuthenticationFailed(
            f"{name} refused access ({shown}): the API app may lack a scope this needs "
            f"(requested: {scope})."
        )
    if code == "INSUFFICIENT_BALANCE":
        return InsufficientFunds(
            "The company's Giftronaut balance is too low for this card; top it up."
        )
    if code == "DUPLICATE_IDEMPOTENCY_KEY":
        return IdempotencyConflict(
            "Giftronaut has this reward's idempotency key with different order details "
            "(recipient email, amount or card); an order may exist. Check Giftronaut's "
            "order list before ordering again."
        )
    if code == "ORDER_NOT_CANCELABLE":
        return OrderNotCancelable(
            "Giftronaut cannot cancel this order: only scheduled orders can be cancelled, "
            "at least an hour before they are sent."
        )
    if code in _OUT_OF_STOCK_CODES:
        return OutOfStock("This Giftronaut card is out of stock right now.")
    if creating:
        if status == 404 or (code and re.search("PRODUCT|AMOUNT|PRICE|DENOMINATION", code)):
            return InvalidProduct(f"Giftronaut does not accept this card or amount ({shown}).")
        if status == 409:
            return OutcomeUnknown(
                f"Giftronaut reported a conflict ({shown}) for this order; one may exist. "
                "Check Giftronaut's order list before ordering again."
            )
        return OrderDeclined(f"Giftronaut declined the order ({shown}).")
    if method == "GET" and "/orders/" in path and status == 404:
        return OutcomeUnknown(
            f"Giftronaut has no order {path.rsplit('/', 1)[-1]} ({shown}). Check the order "
            "in Giftronaut's portal."
        )
    return OrderDeclined(f"Giftronaut refused the request ({shown}).")


def _token_refusal(name: str, scope: str, response: httpx.Response) -> AuthenticationFailed:
    """The token endpoint's refusal (RFC 6749 errors)."""
    code = _error_code(response)
    if code == "invalid_scope":
        return AuthenticationFailed(
            f"{name} refused the requested scopes ({scope}); allow them for the "
            "API app or change GIFTRONAUT_SCOPE."
        )
    return AuthenticationFailed(
        f"{name} rejected our client credentials "
        f"({code or f'HTTP {response.status_code}'}): check GIFTRONAUT_CLIENT_ID and "
        "GIFTRONAUT_CLIENT_SECRET."
    )


def _error_code(response: httpx.Response) -> str | None:
    """The vendor's error code, if it is a plain identifier (never its free text)."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) and _CODE_OK.fullmatch(code) else None


def _safe_code(value: str) -> str:
    return value if _CODE_OK.fullmatch(value) else "an unreadable status"
