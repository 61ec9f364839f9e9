"""CardPlusPay (api.cardpluspay.com): gift-card codes bought with an API key, one value per item.

Endpoints used (paths, fields and envelopes as in CardPlusPay's integration guide):

* ``GET /catalog``: the products. One *item code* (``GOOGLE-5USD-KOXx``) is one fixed face value
  (``value``) in ``currency``; ``price`` is what we would pay. Physical cards are left out.
* ``GET /catalog?item_id=<code>`` and ``POST /orders/check``: before every purchase the item is
  re-read (its face value and currency must equal the approved ones, or nothing is bought) and its
  stock is checked, as the guide asks.
* ``POST /orders`` ``{"item_code", "quantity": 1, "email"}``: the purchase. The answer carries
  ``order_id`` and, when issued, ``codes[]`` (``code``, ``charged_amount``, ``denomination``,
  optional ``metadata: [{"Pin": ...}]``).
* ``GET /orders/{order_id}``: the order's status and codes, polled while it is not completed.
* ``GET /orders``: recent orders, read to find out whether an order went through (below).

Every answer is an envelope ``{"success", "message", "data"}``; ``success`` is checked before
``data`` is used. Money is parsed as :class:`~decimal.Decimal` whether it comes as a JSON string or
number. HTTP errors: 400 (invalid item / insufficient balance / out of stock, told apart by the
envelope's ``message``), 401 (API key), 404 (unknown item or order), 422 (validation), 429, 5xx.

Not buying twice
================

CardPlusPay documents **no idempotency key and no client reference field**: a repeated
``POST /orders`` buys another card. The adapter therefore never re-sends a purchase whose outcome
it does not know. What it knows of earlier sends comes from the bot's database
(:class:`~providers.base.SendLog`), written before every send, so a restart or another process
taking the reward over knows exactly what was sent:

1. ``POST /orders`` is sent with ``retry=False``, after the product and stock checks, once per
   call, and calls in one process are serialized (one lock), so nothing in it races a lookup.
2. A definite answer ends the matter: 2xx with an order, 4xx (nothing was bought: the refusal is
   raised; after an earlier lost answer, :class:`OutcomeUnknown`), 429 (rejected before
   processing: :class:`RateLimited`, retried later).
3. An unknown outcome (timeout, dropped connection, 5xx, an unreadable 2xx) leaves the key
   *unsettled*. It is reconciled at once and again on every later call for that key, before
   anything is re-sent: the orders created since the first unsettled send (minus ``clock_skew``)
   are read from ``GET /orders`` (newest first, every page) and each is compared with the
   request on **recipient email, item code and face value** (from the list entry, or
   ``GET /orders/{id}`` when the entry lacks them). Orders the bot already attributed to
   another reward (``SendLog.attributed``) are left out.

   * exactly one order matches on all three and nothing else in the window is unresolved →
     it is ours: it is returned;
   * several match, or an order cannot be ruled out (a field missing), or the list could not be
     read to the window's start → :class:`OutcomeUnknown` (the bot parks the request as
     needs_review and says a person must check the CardPlusPay dashboard);
   * none, and CardPlusPay had *answered* the last send (5xx, ``success: false``): the request
     was over on their side and the order is not there, so it was not placed: the key is
     settled and may be sent again (the docs: 500 = "retry later", and "reconcile via
     ``GET /orders`` first");
   * none, but the last send got no answer (timeout, dropped connection, or a process that died
     while it was in flight): CardPlusPay may still be processing it. The adapter says "retry
     later" (:class:`ProviderUnavailable`) and looks again on the next call; if nothing has
     appeared ``settle_time`` after that send it raises :class:`OutcomeUnknown`, because the
     docs guarantee nothing that makes the absence certain. It never re-sends such an order by
     itself.

4. A key never sent before is bought without a lookup: the database says it was never sent, so
   no earlier reward of the same card to the same person can hold it up, and once a person has
   settled an uncertain order, the next reward is ordered normally.

Limits of this reasoning (it is only as good as what the API shows):

* The lookup window starts ``clock_skew`` (default an hour) before the first unsettled send, as
  the bot's clock wrote it: that covers CardPlusPay's clock disagreeing with ours and our clock
  having stepped. A bot clock more than that far ahead of CardPlusPay's could miss the order.

* Matching assumes ``GET /orders`` entries (or ``GET /orders/{id}``) show ``created_at``, the
  ``email`` we sent, and the item code (top-level ``item_code``/``item_id`` or ``codes[].item_code``
  as in the create answer). The docs' samples elide these. If the real API omits them, every
  recent order is "unresolved" and an order of unknown outcome fails closed into needs_review:
  verify this first.
* Paging: ``per_page`` max 100 is documented, the ``page`` parameter is not. The adapter checks
  that ``pagination.current_page`` echoes the page it asked for and that entries come newest
  first; otherwise, or past ``max_scan_pages`` pages, the list counts as unreadable (fail closed).
* Two bot processes may send purchases for different rewards while one of them reconciles: an
  order of the same card for the same person placed meanwhile by the other process is one the
  lookup cannot rule out, so the uncertain reward goes to review (never a second purchase).
* A dashboard purchase of the same card for the same email within minutes of an unknown send
  could be taken for ours. Two matches are never guessed between.

Other assumptions (docs silent or contradictory):

* ``charged``: the sum of ``codes[].charged_amount`` in ``codes[].currency`` (the create
  answer's sample has both); else the order's ``amount`` in that currency; else unknown.
* Order status: only ``"completed"`` is documented. ``completed`` with exactly one code →
  COMPLETED; ``failed``/``cancelled``/``refunded``/``rejected``/``declined``/``expired``/``error``
  → FAILED; anything else (or no code yet) → PENDING, polled. An order still pending
  ``pending_limit`` after its ``created_at`` → OutcomeUnknown. ``state`` is ignored (it is the
  call's state: ``"success"`` on reads).
* ``POST /orders/check`` must answer ``state: "in_stock"`` (or ``status: true`` without a
  ``state``); anything else, or a 400, counts as out of stock (the "not available" answer is
  undocumented).
* An order answer with more than one code, or a code for another item or face value than was
  approved → OutcomeUnknown (money moved; a person checks).
* A 4xx (incl. 401/404) while reading an order we placed → OutcomeUnknown, not a refusal: the
  order exists and may be paid.
* Redemption: ``code``; a PIN from ``metadata`` (key ``Pin``, any case) or a ``pin`` field; a link
  from ``url``/``redemption_url``/``redeem_url`` (field or metadata), if any.
* The recipient's email is required (``needs_recipient_email``): it is sent as ``email`` and it
  is the main matching key. CardPlusPay may also email the card; the bot DMs it regardless.
* 429 without ``Retry-After`` waits 5 seconds (the docs name no header).
* Optional request signing (``X-API-Challenge``/``X-API-Signature``) is not supported: its
  challenge endpoint is not documented. Accounts with signing on get 401 → AuthenticationFailed.
* There are no webhooks and no sandbox host; ``CARDPLUSPAY_API_URL`` must be https (plain http
  only to localhost, for tests).

Settings: ``CARDPLUSPAY_API_KEY`` (required), ``CARDPLUSPAY_API_URL`` (default
``https://api.cardpluspay.com/v1``).
"""

from providers.cardpluspay.adapter import PRODUCTION_URL, CardPlusPayProvider

__all__ = ["PRODUCTION_URL", "CardPlusPayProvider"]
