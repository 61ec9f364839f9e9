"""The provider error taxonomy: what the fulfillment worker may retry and what it must not.

::

    ProviderError
    ├── RetryableProviderError        the order may or may not exist: retry with the same key
    │   ├── ProviderUnavailable       timeout, dropped connection, 5xx
    │   └── RateLimited               429; ``retry_after`` says how long to wait
    └── OrderRefused                  definite: the provider did not and will not place this order
        ├── AuthenticationFailed      bad or missing credentials
        ├── InsufficientFunds         the company's balance with the provider is too low
        ├── OutOfStock                the product cannot be issued right now
        ├── InvalidProduct            unknown product, or amount not allowed for it
        ├── IdempotencyConflict       the key was used before with a different order body
        └── OrderDeclined             any other refusal the provider explains in its message

Messages are written to be shown to users in Slack, so they never contain credentials,
redemption links, codes or PINs.
"""

from __future__ import annotations


class ProviderError(Exception):
    """Base class of every error a provider adapter raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RetryableProviderError(ProviderError):
    """The outcome is unknown or the provider is briefly unable to answer."""


class ProviderUnavailable(RetryableProviderError):
    """Timeout, connection failure or server error."""


class RateLimited(RetryableProviderError):
    """The provider asked us to slow down."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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


class IdempotencyConflict(OrderRefused):
    """The idempotency key was already used for a different order."""


class OrderDeclined(OrderRefused):
    """Any other definite refusal."""
