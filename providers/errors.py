"""The provider error taxonomy: what the bot may retry, what it must not, and what needs a human.

::

    ProviderError
    ├── ProviderConfigError           a provider setting is missing or malformed (start-up stops)
    ├── RetryableProviderError        nothing was ordered, or replaying the same key is safe
    │   ├── ProviderUnavailable       timeout, dropped connection, 5xx, unreadable answer
    │   └── RateLimited               429; ``retry_after`` says how long to wait
    ├── OutcomeUnknown                an order may exist and cannot be safely replayed or found:
    │   │                             the request is parked for manual review
    │   └── IdempotencyConflict       our key was already used with a different body: since
    │                                 each request has its own key, an order of ours may exist
    ├── WebhookRejected               a webhook failed signature or format checks
    └── OrderRefused                  definite: the provider did not and will not place this order
        ├── AuthenticationFailed      bad or missing credentials
        ├── InsufficientFunds         the company's balance with the provider is too low
        ├── OutOfStock                the product cannot be issued right now
        ├── InvalidProduct            unknown product, or amount not allowed for it
        └── OrderDeclined             any other refusal the provider explains in its message

Messages are written to be shown to users in Slack, so they never contain credentials,
redemption links, codes or PINs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# How much of a vendor's own words a message quotes.
VENDOR_TEXT_LIMIT = 200
_URL = re.compile(r"https?://\S+", re.IGNORECASE)


class ProviderError(Exception):
    """Base class of every error a provider adapter raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProviderConfigError(ProviderError):
    """A provider's settings are missing or malformed; the message names the variable."""


class RetryableProviderError(ProviderError):
    """Trying again (with the same idempotency key and body) is safe and may succeed."""


class ProviderUnavailable(RetryableProviderError):
    """Timeout, connection failure, server error or an answer we could not read."""


class RateLimited(RetryableProviderError):
    """The provider asked us to slow down."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OutcomeUnknown(ProviderError):
    """An order may have been placed, and neither a safe replay nor a lookup can tell."""


class IdempotencyConflict(OutcomeUnknown):
    """The idempotency key was already used for a different order body."""


class WebhookRejected(ProviderError):
    """A webhook delivery is not authentic or not understood; answer 4xx and ignore it."""


class OrderRefused(ProviderError):
    """The provider definitively refused the order; retrying cannot help."""


class AuthenticationFailed(OrderRefused):
    """The provider rejected our credentials."""


class InsufficientFunds(OrderRefused):
    """The account balance cannot cover the order."""


class OutOfStock(OrderRefused):
    """The product is temporarily unavailable."""


class InvalidProduct(OrderRefused):
    """The product or amount is not accepted by the provider."""


class OrderDeclined(OrderRefused):
    """Any other definite refusal."""


def vendor_text(
    text: str | None, *, secrets: Iterable[str] = (), limit: int = VENDOR_TEXT_LIMIT
) -> str:
    """A vendor's own words made fit for a user-facing message: each of ``secrets`` redacted,
    links removed (they may be redemption links), printable, one line, at most ``limit``
    characters."""
    cleaned = text or ""
    for secret in secrets:
        if secret:
            cleaned = cleaned.replace(secret, "[redacted]")
    cleaned = _URL.sub("[link]", cleaned)
    cleaned = " ".join("".join(ch if ch.isprintable() else " " for ch in cleaned).split())
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rstrip() + "…"
    return cleaned
