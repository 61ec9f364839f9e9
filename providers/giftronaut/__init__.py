"""Giftronaut: branded-card and choice-card orders that Giftronaut emails to the recipient.

API (``https://api.giftronaut.com``; sandbox and production share the URL, the credentials pick
the environment):

* ``POST /oauth2/token`` (form-encoded OAuth2 client credentials) → a Bearer token, cached until
  :data:`TOKEN_EXPIRY_MARGIN` seconds before ``expires_in`` ends; one asyncio.Lock makes a burst of
  calls mint one token. A 401 from the API drops the token the failing call used and retries once.
* ``GET /api/v1/catalog/branded-cards`` and ``/choice-cards`` → the catalog.
* ``POST /api/v1/orders/branded-cards`` or ``/choice-cards`` → the order: one recipient, or
  one ``recipients[]`` entry per person of a bulk reward (:meth:`place_shared_order`).
* ``GET /api/v1/orders/{orderId}`` → ``PENDING``/``IN_PROGRESS`` (pending), ``COMPLETE``
  (completed, ``delivered_by_provider=True``: Giftronaut emailed the card, no secret reaches the
  bot; ``recipients[]``, "one entry per issued gift card", gives ``cards``), ``CANCELED``
  (failed).
* ``DELETE /api/v1/orders/{orderId}/cancel`` (:meth:`GiftronautProvider.cancel_order`) and
  ``POST /api/v1/orders/{orderId}/resend`` (:meth:`GiftronautProvider.resend`).

Assumptions, where the docs are silent or contradict each other (see the vendor notes):

* **Idempotency (docs conflict).** The orders reference wants a body ``idempotencyKey`` of at
  most 64 characters; the idempotency guide wants an ``X-Idempotency-Key`` header (≤ 128), a
  24-hour window, ``200`` + the original order on a replay and ``409 DUPLICATE_IDEMPOTENCY_KEY``
  for the same key with another body. We take the safest reading of both: the same ≤ 64-character
  key goes in the body *and* the header; the key is honoured for 24 hours only; a different body
  is a conflict. The bot's keys (``rewardbot-<id>-<32 hex>``) are sent as they are; a key longer
  than 64 characters or with other characters than ``[A-Za-z0-9._:-]`` is replaced by
  ``rewardbot-sha256-`` + the first 47 hex digits of its SHA-256 (64 characters, deterministic,
  so every retry and restart sends the same key) — see :func:`giftronaut_key`.
* **After 24 hours a replay would be a new order.** Every send of a key is recorded before it
  is made, in the bot's database (:class:`~providers.base.SendLog`): a key whose outcome is
  still unknown more than :data:`SAFE_REPLAY_AGE` after its first send raises
  :class:`OutcomeUnknown` (manual review) instead of risking a second card, however many
  restarts or processes came between. A key with a different body is a conflict, and a key
  whose order id is known is never sent again (the bot looks the order up).
* **Stable order body.** The body carries only what cannot change between retries of one request
  (product, amount, email, the request's message, the sender name, timing, refund option). The
  recipient's Slack display name is *not* sent (``firstName``/``lastName`` are optional): a
  renamed profile between retries would change the body and turn a safe replay into a conflict.
* **Product ids.** Branded and choice catalogs are separate id spaces and need different order
  endpoints, so our ``product_id`` is ``branded:<productId>`` or ``choice:<productId>``.
* **Catalog shape (not documented).** Accepted wrappers: a bare list, or an object with
  ``products``/``data``/``items`` (one level of nesting). Per item: id ``productId``/``id``; name
  ``name``/``brandName``/``productName``/``title``; currency ``currency``/``currencyCode``; fixed
  values ``prices``/``priceList``/``pricePoints``/``denominations``/``amounts``; a range
  ``minAmount``/``minPrice``/``minValue`` with ``maxAmount``/``maxPrice``/``maxValue``. For a
  choice card (a range by definition) a two-value ``prices`` list is read as ``[min, max]``. A
  choice card without a currency is USD (Giftronaut balances are USD and choice amounts are not
  converted); a branded card without one is skipped. Items we cannot read are skipped (logged
  by id), never guessed.
* **Amounts** are parsed from JSON losslessly and sent as JSON numbers whose text is exactly the
  Decimal (both by the shared :class:`~providers.http.HttpProvider`).
* **Responses (not documented).** Create and get return an order object with ``orderId`` and
  ``status``, possibly wrapped in ``data``. ``totalCost`` (``{amount, currency}``, the shape of
  the ``order.created`` webhook) is read as ``charged`` when present. ``rewardLink`` is never read.
  Only ``orderId`` and ``status`` must be readable: ``totalCost`` or ``recipients[]`` in another
  shape is left unread (logged), so a placed order is never lost to a field we can do without.
  An unknown status raises :class:`OutcomeUnknown`.
* **Errors (mostly not documented).** Bodies are ``{"error": CODE, "message": text}``. Mapping by
  code whatever the status: ``INSUFFICIENT_BALANCE`` → InsufficientFunds,
  ``DUPLICATE_IDEMPOTENCY_KEY`` → IdempotencyConflict, ``ORDER_NOT_CANCELABLE`` →
  :class:`OrderNotCancelable`, ``OUT_OF_STOCK``/``SOLD_OUT``/``PRODUCT_UNAVAILABLE`` →
  OutOfStock; any other 4xx on an order create: 404 or a code naming the product, amount or price
  → InvalidProduct, another 409 → OutcomeUnknown (an order with this key may exist), else
  OrderDeclined; 404 on an order lookup → OutcomeUnknown; 401 (after one token refresh) and 403 →
  AuthenticationFailed; 429 (``Retry-After`` honoured) and 5xx → retryable. The vendor's free-text
  ``message`` is never shown (it may hold an address); only its sanitized code is. The token
  endpoint's errors follow RFC 6749 (``400``/``401`` ``invalid_client``…) → AuthenticationFailed.
* **Scopes** requested: ``GIFTRONAUT_SCOPE`` (default ``catalog.read orders.read orders.write
  orders.cancel``).
"""

from providers.giftronaut._errors import OrderNotCancelable
from providers.giftronaut._orders import MAX_KEY_LENGTH, ScheduledSend, giftronaut_key
from providers.giftronaut.adapter import (
    DEFAULT_SCOPE,
    PRODUCTION_URL,
    REPLAY_WINDOW,
    SAFE_REPLAY_AGE,
    TOKEN_EXPIRY_MARGIN,
    GiftronautProvider,
)

__all__ = [
    "DEFAULT_SCOPE",
    "MAX_KEY_LENGTH",
    "PRODUCTION_URL",
    "REPLAY_WINDOW",
    "SAFE_REPLAY_AGE",
    "TOKEN_EXPIRY_MARGIN",
    "GiftronautProvider",
    "OrderNotCancelable",
    "ScheduledSend",
    "giftronaut_key",
]
