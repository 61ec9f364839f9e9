"""How Runa's error answers map to the taxonomy: by their ``type``, never their ``message``."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from pydantic import ValidationError

from providers.errors import (
    AuthenticationFailed,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidProduct,
    OrderDeclined,
    OrderRefused,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from providers.runa._json import API_VERSION, _ValidationError


class _StillProcessing(RateLimited):
    """``idempotency_in_progress``: Runa is still working on the first request with this key."""


class _RunaServerError(ProviderUnavailable):
    """A 5xx with a Runa error body: its idempotency cache may replay it for 30 days."""


_REFUSALS: dict[str, tuple[type[OrderRefused | IdempotencyConflict], str]] = {
    "unauthorized": (AuthenticationFailed, "Runa rejected our API key (check RUNA_API_KEY)."),
    "invalid_api_key": (AuthenticationFailed, "Runa rejected our API key (check RUNA_API_KEY)."),
    "forbidden": (AuthenticationFailed, "Runa says our API key may not do this."),
    "ordering_restricted": (
        OrderDeclined,
        "Runa has paused ordering on this account: its spending limit was reached.",
    ),
    "insufficient_funds": (
        InsufficientFunds,
        "The Runa account balance is too low for this card; top it up and request again.",
    ),
    "product_validation_error": (InvalidProduct, "Runa does not allow ordering this card"),
    "currency_mismatch": (
        OrderDeclined,
        "The payment currency (RUNA_PAYMENT_CURRENCY) does not match the card's currency.",
    ),
    "payment_method_unavailable": (
        OrderDeclined,
        "The Runa payment method (RUNA_PAYMENT_METHOD) is not available on this account.",
    ),
    "invalid_card_id": (OrderDeclined, "Runa rejected the payment card."),
    "currency_not_supported": (OrderDeclined, "Runa cannot take card payments in this currency."),
    "idempotency_validation_error": (
        IdempotencyConflict,
        "This order's idempotency key was already used for a different Runa order.",
    ),
    "invalid_version": (OrderDeclined, f"Runa does not accept API version {API_VERSION}."),
    "version_removed": (
        OrderDeclined,
        f"Runa no longer supports API version {API_VERSION}; the adapter must be updated.",
    ),
    "invalid_execution_mode": (
        OrderDeclined,
        "Runa rejected the execution mode (check RUNA_EXECUTION_MODE).",
    ),
    "insecure_protocol": (OrderDeclined, "Runa requires HTTPS (check RUNA_API_URL)."),
    "pagination_error": (OrderDeclined, "Runa rejected our page request."),
    "not_found": (OrderDeclined, "Runa does not know this resource."),
    "bad_request": (OrderDeclined, "Runa could not read our request."),
}
# Runa adds the vendor's explanation to these messages (it names the product or the problem).
_WITH_VENDOR_DETAIL = frozenset({"product_validation_error"})


def _validation_refusal(
    response: httpx.Response, vendor_text: Callable[[str], str]
) -> ProviderError:
    """A 422: ``InvalidProduct`` if it names the product or face value, else a decline."""
    try:
        body = _ValidationError.model_validate_json(response.content)
    except ValidationError:
        return OrderDeclined("Runa rejected the order details (HTTP 422).")
    problems = [
        f"{'.'.join(d.location) or 'request'}: {d.message or d.type or 'invalid'}"
        for d in body.details
    ]
    about_card = any(
        part in ("face_value", "products", "value") for d in body.details for part in d.location
    )
    error_class: type[OrderRefused] = InvalidProduct if about_card else OrderDeclined
    detail = vendor_text("; ".join(problems)) or "no details given"
    return error_class(f"Runa rejected the order details ({detail}).")
