"""Runa (formerly WeGift): payout links for gift cards, API version ``2024-02-05``.

What the adapter does, following ``/work/shared/provider-docs/runa`` field by field:

* **Auth and version.** Every call sends ``X-Api-Key`` and ``X-Api-Version: 2024-02-05``. The
  WeGift shape (``idempotency_key`` in the body, ``GET /order/{id}/links``) was removed by the
  2023-07-27 version and is not used.
* **Catalog.** ``GET /product?is_orderable=true&limit=500``, following
  ``pagination.cursors.after`` page by page. Only ``payout_type == "gift_card"`` products are
  offered (``subscription`` needs a plan code, ``payment`` is push-to-card); ``fixed``
  denominations become a list, ``open`` ones a min/max range. A product we cannot read is
  skipped (and logged), not the whole catalog.
* **Ordering.** ``POST /order`` with ``X-Idempotency-Key`` (the bot's stored key) and
  ``X-Execution-Mode`` (``async`` by default, ``RUNA_EXECUTION_MODE``), one item per recipient
  (a bulk reward is one order of up to 200 items): the ``face_value``,
  ``distribution_method: {"type": "PAYOUT_LINK"}`` (the bot DMs the link itself)
  and ``products: {"type": "SINGLE", "value": <product code>}``, paid with
  ``payment_method: {"type": "ACCOUNT_BALANCE", "currency": ...}``. The order ``description`` is
  our reference (``rewardbot-<id>``) and ``metadata`` holds the reference and the idempotency
  key, so an order can be found again (below). The body is built deterministically, so a replay
  is byte-identical. ``200`` (sync) carries the full order; ``202`` (async) carries
  ``{id, status}`` and the bot polls ``GET /order/{id}`` until ``COMPLETED`` or ``FAILED``.
* **Completion.** ``items[0].payout.url`` is the redemption link (a ``SecretStr``); an order of
  several items lists each as a card (item ``id``, ``face_value``, link), and the bot gives each
  recipient one of the cards of their face value (they are interchangeable: same product, same
  value). ``charged`` is ``total_price`` (which includes fees) in the order ``currency``.
* **Webhooks.** ``order.completion`` deliveries are verified as Svix / Standard Webhooks:
  ``webhook-id``/``-timestamp``/``-signature`` (or the ``svix-`` spellings the Runa guide
  shows), ``whsec_`` base64 secret, HMAC-SHA256 over ``{id}.{timestamp}.{body}``, timestamp
  within 5 minutes either way, any of several space-separated ``v1,`` signatures, constant-time
  comparison. A verified notice only wakes the bot, which then reads the order with
  ``GET /order/{id}``: nothing in a webhook body is trusted beyond the order id.

Errors (``type`` decides, never ``message``; see :meth:`RunaProvider._refusal_for`):

* ``401``/``403`` → :class:`AuthenticationFailed`; ``ordering_restricted`` (403) and other final
  4xx → :class:`OrderDeclined`; ``insufficient_funds`` → :class:`InsufficientFunds`;
  ``product_validation_error`` and ``422`` naming the product or face value →
  :class:`InvalidProduct`; ``idempotency_validation_error`` → :class:`IdempotencyConflict`.
* ``429`` (body ``{"error": "rate exceeded"}``) → :class:`RateLimited`, waiting ``Retry-After``
  when sent (the docs name no header; read by the shared ``HttpProvider._retry_after``) and
  ``rate_limit_wait`` seconds otherwise.
* ``idempotency_in_progress`` (documented both as HTTP 102 and as 400) → retryable, replayed
  after ``in_progress_wait`` seconds with the same key and body.
* Timeouts, dropped connections, and 5xx answers that are not Runa JSON errors (a proxy or load
  balancer) → :class:`ProviderUnavailable`: the request never reached Runa's idempotency cache,
  or a replay returns the cached original answer, so replaying with the same key is safe.
* 5xx answers that *are* Runa JSON errors (``internal_server_error``, ``timeout``) on order
  creation: idempotency.mdx says the cache replays them for 30 days, so replaying cannot tell
  us anything new. After the in-call retries the adapter looks the order up (below); if it is
  not found the order raises :class:`OutcomeUnknown` and the bot parks the request for review.
  Retrying forever is not an option: after 30 days the key expires and a replay could buy a
  second card.

Assumptions (the docs are silent or contradict each other):

* A literal ``HTTP 102`` is an interim response to HTTP clients: httpx keeps waiting for a
  final answer and times out, which is retried like any timeout. ``idempotency_in_progress``
  with any other status is handled by its ``type``.
* The order lookup scans ``GET /order`` (at most ``lookup_pages`` pages of 100) for a completed
  order whose ``description`` is our reference, then confirms it with ``GET /order/{id}``
  whose ``metadata`` must carry our idempotency key (another deployment sharing the Runa
  account could use the same reference). Incomplete orders carry no description, so an order
  still processing cannot be found: that is :class:`OutcomeUnknown` too.
* ``GET /order/{id}`` failing with a final error (e.g. 404 or a revoked key) after the order
  was accepted is :class:`OutcomeUnknown`, not a refusal: a card may still be issued.
* A ``COMPLETED`` order without items, or of one item without a payout URL or whose link is
  ``CANCELLED``/``EXPIRED``, is :class:`OutcomeUnknown` (someone must look at it). In an order
  of several items, such an item is a card without a redemption, so only its recipient is
  parked and everyone else's card stays where it was.
* An unknown order ``status`` is treated as still processing.
* Catalog pagination stops when a page has no ``after`` cursor, an empty page, or a repeated
  cursor (at most ``_MAX_CATALOG_PAGES`` pages).
* ``face_value`` is a JSON number in the spec: the ``Decimal`` goes into the body as it is and
  the shared ``_request`` writes it as that exact number. Amounts are read as ``Decimal`` from
  strings or from JSON numbers (the shared ``_parse`` never goes through floats).
* With ``RUNA_PAYMENT_CURRENCY`` unset, the order is paid from the balance in the card's own
  currency; set it to pay every order from one balance (Runa's "embedded FX").
* Vendor text shown to users (failure messages) is cleaned by the shared
  :func:`~providers.errors.vendor_text` (one line, no URLs, bounded).
"""

from providers.runa._json import API_VERSION
from providers.runa._webhooks import WEBHOOK_TOLERANCE
from providers.runa.adapter import PRODUCTION_URL, RunaProvider

__all__ = ["API_VERSION", "PRODUCTION_URL", "WEBHOOK_TOLERANCE", "RunaProvider"]
