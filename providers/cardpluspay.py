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

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Literal, Self

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from bot.domain import Money, minor_units
from providers.base import OrderRequest, OrderResult, OrderState, Product, Redemption, SendLog
from providers.errors import (
    AuthenticationFailed,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidProduct,
    OrderDeclined,
    OrderRefused,
    OutcomeUnknown,
    OutOfStock,
    ProviderError,
    ProviderUnavailable,
)
from providers.http import HttpProvider, ModelT, RetryPolicy, encode_json, find_list
from providers.settings import ApiUrl, ProviderSettings, Secret, read_settings

log = logging.getLogger(__name__)

PRODUCTION_URL = "https://api.cardpluspay.com/v1"
_DISPLAY = "CardPlusPay"
_PER_PAGE = 100
_MAX_CATALOG_PAGES = 50
_DEFAULT_RATE_LIMIT_WAIT = 5.0
_FAILED_STATUSES = frozenset(
    {"failed", "cancelled", "canceled", "refunded", "rejected", "declined", "expired", "error"}
)
_PIN_KEYS = frozenset({"pin", "pin_code", "pincode"})
_URL_KEYS = frozenset({"url", "redemption_url", "redeem_url", "link"})
# A naive ``created_at`` could be in any time zone: count it as anywhere within this much.
_NAIVE_TIME_SLACK = timedelta(hours=14)
# How much of CardPlusPay's own message an error quotes.
_VENDOR_TEXT_LIMIT = 160


# -- settings --------------------------------------------------------------------------------


class _Settings(ProviderSettings):
    api_key: Secret = Field(alias="CARDPLUSPAY_API_KEY")
    api_url: ApiUrl = Field(default=PRODUCTION_URL, alias="CARDPLUSPAY_API_URL")


# -- vendor JSON (private) -------------------------------------------------------------------


class _Vendor(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)


class _Envelope(_Vendor):
    success: bool
    message: str = ""
    data: Any = None


class _Pagination(_Vendor):
    total: int | None = None
    per_page: int | None = None
    current_page: int | None = None
    last_page: int | None = None


class _CatalogItem(_Vendor):
    item_code: str | None = None
    item_id: str | None = None
    product_name: str | None = None
    name: str | None = None
    brand: str | None = None
    value: Decimal | None = None
    price: Decimal | None = None
    currency: str | None = None
    delivery_type: str | None = None

    @property
    def code(self) -> str | None:
        return self.item_code or self.item_id


class _CatalogPage(_Vendor):
    items: list[dict[str, Any]] = []
    pagination: _Pagination | None = None


class _Check(_Vendor):
    price: Decimal | None = None
    state: str | None = None
    status: bool | None = None


def _flatten_metadata(value: Any) -> Any:
    """``[{"Pin": "123"}]`` (the documented shape) or ``{"Pin": "123"}`` → one dict."""
    if value is None:
        return {}
    entries = value if isinstance(value, list) else [value]
    merged: dict[str, str] = {}
    for entry in entries:
        if isinstance(entry, dict):
            merged.update({str(k): str(v) for k, v in entry.items() if v is not None})
    return merged


class _Code(_Vendor):
    code: SecretStr | None = None
    pin: SecretStr | None = None
    url: SecretStr | None = None
    redemption_url: SecretStr | None = None
    redeem_url: SecretStr | None = None
    metadata: dict[str, SecretStr] = {}
    status: str | None = None
    currency: str | None = None
    item_code: str | None = None
    denomination: Decimal | None = None
    denomination_unit: str | None = None
    charged_amount: Decimal | None = None

    @field_validator("metadata", mode="before")
    @classmethod
    def _flat(cls, value: Any) -> Any:
        return _flatten_metadata(value)

    @field_validator("code", "pin", "url", "redemption_url", "redeem_url", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return str(value)

    def meta(self, keys: frozenset[str]) -> SecretStr | None:
        for key, value in self.metadata.items():
            if key.strip().lower() in keys and value.get_secret_value().strip():
                return value
        return None


class _Order(_Vendor):
    order_id: int
    order_no: str | None = None
    status: str | None = None
    codes: list[_Code] = []
    amount: Decimal | None = None
    created_at: str | None = None
    email: str | None = None
    item_code: str | None = None
    item_id: str | None = None
    total_denomination: Decimal | None = None
    denomination_unit: str | None = None

    @field_validator("created_at", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        return None if value is None else str(value)

    @property
    def label(self) -> str:
        return self.order_no or f"#{self.order_id}"


class _OrderList(_Vendor):
    orders: list[dict[str, Any]] = []
    pagination: _Pagination | None = None


# -- order identity and the order-list scan ---------------------------------------------------


def _time_range(text: str | None) -> tuple[datetime, datetime] | None:
    """The UTC instants ``created_at`` may mean (a naive time could be in any zone)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
        return moment - _NAIVE_TIME_SLACK, moment + _NAIVE_TIME_SLACK
    moment = moment.astimezone(UTC)
    return moment, moment


@dataclass(frozen=True)
class _Identity:
    """What tells one CardPlusPay order from another: never its codes."""

    order_id: int
    label: str
    created: tuple[datetime, datetime] | None = None
    email: str | None = None
    item_code: str | None = None
    face: Decimal | None = None

    @classmethod
    def of(cls, order: _Order, fallback: _Identity | None = None) -> _Identity:
        items = {c.item_code for c in order.codes if c.item_code}
        faces = [c.denomination for c in order.codes if c.denomination is not None]
        face = order.total_denomination
        if face is None and faces and len(faces) == len(order.codes):
            face = sum(faces, Decimal(0))
        found = cls(
            order_id=order.order_id,
            label=order.label,
            created=_time_range(order.created_at),
            email=order.email.strip().casefold() if order.email else None,
            item_code=order.item_code
            or order.item_id
            or (items.pop() if len(items) == 1 else None),
            face=face,
        )
        if fallback is None:
            return found
        return cls(
            order_id=found.order_id,
            label=found.label if order.order_no else fallback.label,
            created=found.created or fallback.created,
            email=found.email or fallback.email,
            item_code=found.item_code or fallback.item_code,
            face=found.face if found.face is not None else fallback.face,
        )

    @property
    def complete(self) -> bool:
        fields = (self.created, self.email, self.item_code, self.face)
        return all(f is not None for f in fields)

    def compare(self, order: OrderRequest) -> Literal["match", "other", "unresolved"]:
        email = (order.recipient.email or "").strip().casefold()
        if self.email is not None and self.email != email:
            return "other"
        if self.item_code is not None and self.item_code != order.product_id:
            return "other"
        if self.face is not None and self.face != order.face_value.amount:
            return "other"
        if self.email is not None and self.item_code is not None:
            return "match"
        return "unresolved"


@dataclass
class _Scan:
    """Orders created since a moment that may be the one we are looking for."""

    complete: bool = False
    matches: list[_Identity] = field(default_factory=list)
    unresolved: list[_Identity] = field(default_factory=list)

    def describe(self) -> str:
        """What was found, for a person: order numbers only, never codes."""

        def shown(found: list[_Identity]) -> str:
            labels = [i.label for i in found]
            return ", ".join(labels[:5]) + (" and more" if len(labels) > 5 else "")

        parts = []
        if self.matches:
            parts.append(f"CardPlusPay has order {shown(self.matches)} for this card and recipient")
        if self.unresolved:
            parts.append(
                f"CardPlusPay has orders it does not show enough of to rule out: "
                f"{shown(self.unresolved)}"
            )
        if not self.complete:
            parts.append("CardPlusPay's recent orders could not all be read")
        return "; ".join(parts)


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


# -- the adapter -------------------------------------------------------------------------------


class CardPlusPayProvider(HttpProvider):
    """See the module docstring for the documented behaviour and the assumptions."""

    name: ClassVar[str] = "cardpluspay"
    needs_recipient_email: ClassVar[bool] = True
    api_key_header: ClassVar[str | None] = "X-API-Key"

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_key: SecretStr | str,
        base_url: str = PRODUCTION_URL,
        *,
        retry: RetryPolicy | None = None,
        poll_interval: float = 2.0,
        settle_time: timedelta = timedelta(seconds=60),
        clock_skew: timedelta = timedelta(hours=1),
        pending_limit: timedelta = timedelta(hours=24),
        max_scan_pages: int = 10,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(
            http, base_url, retry=retry, rate_limit_wait=_DEFAULT_RATE_LIMIT_WAIT, api_key=api_key
        )
        self.poll_interval = poll_interval
        self._settle_time = settle_time
        self._clock_skew = clock_skew
        self._pending_limit = pending_limit
        self._max_scan_pages = max_scan_pages
        self._now = clock
        self._lock = asyncio.Lock()
        self._identities: dict[int, _Identity] = {}
        self._charged: dict[int, Money] = {}

    @classmethod
    def from_env(cls, http: httpx.AsyncClient) -> Self:
        settings = read_settings(_Settings)
        return cls(http, settings.api_key, settings.api_url)

    # -- HttpProvider hooks ------------------------------------------------------------------

    def _error_for(self, response: httpx.Response) -> ProviderError:
        error = super()._error_for(response)
        if response.status_code >= 500:
            return _ServerError(error.message)
        return error

    def _refusal_for(self, response: httpx.Response) -> ProviderError:
        return self._refusal(response.status_code, self._message(response))

    def _message(self, response: httpx.Response) -> str:
        """The envelope's ``message``, made safe and short enough to show in Slack."""
        return self._vendor_text(_envelope_message(response), limit=_VENDOR_TEXT_LIMIT)

    @staticmethod
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

    # -- parsing -----------------------------------------------------------------------------

    def _unreadable(self) -> ProviderUnavailable:
        return ProviderUnavailable(f"{_DISPLAY} sent an answer we could not read.")

    def _envelope(self, response: httpx.Response) -> _Envelope:
        """The answer's envelope, numbers as Decimal. The body never reaches an error."""
        return self._parse(response, _Envelope)

    def _payload(self, response: httpx.Response, what: str) -> Any:
        """``data`` of a successful envelope; ``success: false`` on a read is a hiccup."""
        envelope = self._envelope(response)
        if not envelope.success:
            raise ProviderUnavailable(
                f"{_DISPLAY} could not {what}{_said(self._message(response))}."
            )
        return envelope.data

    def _data(self, response: httpx.Response, model: type[ModelT], what: str) -> ModelT:
        return self._validate(model, self._payload(response, what))

    # -- catalog -----------------------------------------------------------------------------

    async def list_products(self) -> list[Product]:
        products: dict[str, Product] = {}
        for page in range(1, _MAX_CATALOG_PAGES + 1):
            listing = await self._catalog_page({"per_page": str(_PER_PAGE)}, page)
            if listing is None:
                break
            for raw in listing.items:
                product = self._product(raw)
                if product is not None:
                    products.setdefault(product.product_id, product)
            if self._last_page(listing.pagination, len(listing.items)):
                break
        return list(products.values())

    async def _catalog_page(self, params: Mapping[str, str], page: int) -> _CatalogPage | None:
        query = dict(params) | ({"page": str(page)} if page > 1 else {})
        data = self._payload(await self._request("GET", "/catalog", params=query), "list cards")
        listing = self._validate(_CatalogPage, _catalog_shape(data))
        if page > 1 and (listing.pagination is None or listing.pagination.current_page != page):
            log.warning("cardpluspay ignored catalog page %s; the catalog may be incomplete", page)
            return None
        return listing

    @staticmethod
    def _last_page(pagination: _Pagination | None, count: int) -> bool:
        if count == 0:
            return True
        if pagination is None or pagination.current_page is None or pagination.last_page is None:
            return count < _PER_PAGE
        return pagination.current_page >= pagination.last_page

    def _product(self, raw: dict[str, Any]) -> Product | None:
        try:
            item = _CatalogItem.model_validate(raw)
        except ValidationError:
            log.warning("skipping a cardpluspay catalog item we could not read")
            return None
        code, currency, value = item.code, (item.currency or "").strip().upper(), item.value
        if (item.delivery_type or "").strip().upper() == "PHYSICAL":
            return None
        if not code or value is None or value <= 0 or not re.fullmatch(r"[A-Z]{3}", currency):
            log.warning("skipping cardpluspay item %r: no code, face value or currency", code)
            return None
        step = Decimal(1).scaleb(-minor_units(currency))
        if value != value.quantize(step):
            log.warning("skipping cardpluspay item %r: face value %s %s", code, value, currency)
            return None
        return Product(
            provider=self.name,
            product_id=code,
            name=(item.product_name or item.name or item.brand or code).strip()[:60],
            currency=currency,
            denominations=(value.quantize(step),),
        )

    # -- ordering ----------------------------------------------------------------------------

    async def place_order(self, order: OrderRequest, sends: SendLog | None = None) -> OrderResult:
        sends = sends or SendLog()
        email = (order.recipient.email or "").strip()
        if not email:
            raise OrderDeclined(
                "CardPlusPay needs the recipient's email address, and their Slack profile "
                "shows none."
            )
        body = {"item_code": order.product_id, "quantity": 1, "email": email}
        fingerprint = hashlib.sha256(encode_json(body)).hexdigest()
        async with self._lock:
            if sends.record.fingerprint not in (None, fingerprint):
                # Checked before any lookup: a reconcile would search for the wrong card.
                raise IdempotencyConflict(
                    "This reward's idempotency key was already sent to CardPlusPay with "
                    "different order details (recipient email or card); a card may have been "
                    "bought. Check the CardPlusPay dashboard before ordering again."
                )
            if sends.record.unsettled_since is not None:
                found = await self._reconcile(order, sends)
                if found is not None:
                    return found
            return await self._send(order, sends, body)

    async def get_order(self, provider_order_id: str) -> OrderResult:
        if not provider_order_id.isdigit():
            raise OutcomeUnknown(
                f"{provider_order_id!r} is not a CardPlusPay order id: a person must check the "
                "CardPlusPay dashboard."
            )
        return await self._fetch(int(provider_order_id))

    async def _send(self, order: OrderRequest, sends: SendLog, body: dict[str, Any]) -> OrderResult:
        await self._check_product(order)
        await self._check_stock(order)
        try:
            response = await self._request(
                "POST",
                "/orders",
                json_body=body,
                retry=False,
                sends=sends,
            )
        except ProviderUnavailable as exc:
            if sends.record.unsettled_since is None:
                raise  # it never reached CardPlusPay
            return await self._after_unknown(order, sends, exc.message)
        try:
            envelope = self._envelope(response)
            created = self._validate(_Order, envelope.data) if envelope.success else None
        except ProviderUnavailable as exc:
            # A 2xx we cannot read may well have bought the card: as good as no answer.
            return await self._after_unknown(order, sends, exc.message)
        if created is None:
            # ``success: false``: CardPlusPay answered, but make sure it bought nothing.
            await sends.unanswered(answered=True)
            found = await self._reconcile(order, sends)
            if found is not None:
                return found
            raise self._refusal(400, self._message(response))
        identity = _Identity.of(created)
        self._identities.setdefault(created.order_id, identity)
        return self._result(created, order)

    async def _after_unknown(
        self, order: OrderRequest, sends: SendLog, problem: str
    ) -> OrderResult:
        """The purchase's outcome is unknown: find it, or say when it may be retried."""
        log.warning("cardpluspay order for %s: %s Looking it up.", order.reference, problem)
        found = await self._reconcile(order, sends)
        if found is not None:
            return found
        raise ProviderUnavailable(
            f"{problem} CardPlusPay confirms the card was not bought; it will be ordered again."
        )

    async def _reconcile(self, order: OrderRequest, sends: SendLog) -> OrderResult | None:
        """Find the order an unsettled send may have placed. ``None``: certainly not placed
        (the sends are then settled)."""
        record = sends.record
        assert record.unsettled_since is not None and record.last_sent_at is not None
        try:
            scan = await self._scan(
                order, record.unsettled_since - self._clock_skew, sends.attributed
            )
        except OrderRefused as exc:
            raise OutcomeUnknown(
                self._check_by_hand(f"its order list is unreadable: {exc.message}")
            ) from None
        if scan.complete and len(scan.matches) == 1 and not scan.unresolved:
            ours = scan.matches[0]
            log.info("cardpluspay: found %s for %s by lookup", ours.label, order.reference)
            return await self._fetch(ours.order_id)
        if scan.matches or scan.unresolved or not scan.complete:
            raise OutcomeUnknown(self._check_by_hand(scan.describe()))
        if record.last_answered:
            # CardPlusPay finished with the last send and shows no order: none was placed.
            await sends.settled()
            return None
        if sends.now() - record.last_sent_at < self._settle_time:
            raise ProviderUnavailable(
                "CardPlusPay did not confirm the order and it is not in their order list yet; "
                "checking again before anything is sent again."
            )
        raise OutcomeUnknown(
            self._check_by_hand("no order appeared, but CardPlusPay never answered the purchase")
        )

    @staticmethod
    def _check_by_hand(why: str) -> str:
        return (
            f"CardPlusPay did not confirm whether the card was bought ({why}). A person must "
            "check the CardPlusPay dashboard for this card and recipient before anything is "
            "ordered again; the bot will not retry it by itself."
        )

    async def _check_product(self, order: OrderRequest) -> None:
        """Re-read the item: never buy a card whose face value is not the approved one."""
        try:
            listing = await self._catalog_page({"item_id": order.product_id}, 1)
        except InvalidProduct:  # 404: unknown item code
            listing = None
        items = [self._validate(_CatalogItem, i) for i in (listing.items if listing else [])]
        item = next((i for i in items if i.code == order.product_id), None)
        if item is None:
            raise InvalidProduct(f"CardPlusPay no longer offers {order.product_id}.")
        face = order.face_value
        currency = (item.currency or "").strip().upper()
        if item.value != face.amount or currency != face.currency:
            raise InvalidProduct(
                f"CardPlusPay's {order.product_id} is worth {item.value} {currency}, "
                f"not {face}: nothing was ordered."
            )

    async def _check_stock(self, order: OrderRequest) -> None:
        response = await self._request(
            "POST", "/orders/check", json_body={"item_id": order.product_id, "quantity": 1}
        )
        envelope = self._envelope(response)
        check = self._validate(_Check, envelope.data if isinstance(envelope.data, dict) else {})
        in_stock = check.state == "in_stock" or (check.state is None and check.status is True)
        if not envelope.success or not in_stock or check.status is False:
            raise OutOfStock(
                f"This card is out of stock at CardPlusPay{_said(self._message(response))}."
            )

    # -- reading orders ----------------------------------------------------------------------

    async def _fetch(self, order_id: int) -> OrderResult:
        detail = await self._detail(order_id, placed=True)
        assert detail is not None
        result = self._result(detail, None)
        created = _time_range(detail.created_at)
        if (
            result.state is OrderState.PENDING
            and created is not None
            and self._now() - created[1] > self._pending_limit
        ):
            raise OutcomeUnknown(
                f"CardPlusPay order {detail.label} has not been issued after "
                f"{self._pending_limit.total_seconds() / 3600:g} hours: a person must check the "
                "CardPlusPay dashboard."
            )
        return result

    async def _detail(self, order_id: int, *, placed: bool) -> _Order | None:
        """``GET /orders/{id}``. ``placed``: it is our order, so a 4xx needs a person."""
        try:
            response = await self._request("GET", f"/orders/{order_id}")
        except OrderRefused as exc:
            if not placed:
                return None
            raise OutcomeUnknown(
                f"CardPlusPay would not show order #{order_id} ({exc.message}). It was placed "
                "and may have been paid: a person must check the CardPlusPay dashboard."
            ) from None
        detail = self._data(response, _Order, f"show order #{order_id}")
        if detail.order_id != order_id:
            raise ProviderUnavailable(f"{_DISPLAY} answered about another order.")
        identity = _Identity.of(detail, self._identities.get(order_id))
        if identity.complete:
            self._identities[order_id] = identity
        return detail

    async def _scan(
        self, order: OrderRequest, since: datetime, attributed: frozenset[str]
    ) -> _Scan:
        """Read ``GET /orders`` newest first until ``since``; sort out what may be ``order``,
        leaving out the ``attributed`` orders (known to be other rewards')."""
        scan = _Scan()
        previous: tuple[datetime, datetime] | None = None
        for page in range(1, self._max_scan_pages + 1):
            params = {"sort_by": "created_at", "order": "desc", "per_page": str(_PER_PAGE)}
            if page > 1:
                params["page"] = str(page)
            response = await self._request("GET", "/orders", params=params)
            listing = self._data(response, _OrderList, "list orders")
            pagination = listing.pagination
            if page > 1 and (pagination is None or pagination.current_page != page):
                return scan  # the page parameter is not honoured: the rest cannot be read
            for raw in listing.orders:
                try:
                    entry = _Order.model_validate(raw)
                except ValidationError:
                    return scan  # an entry we cannot read could be the one
                identity = await self._identity(entry)
                created = identity.created
                if created is not None:
                    if previous is not None and created[0] > previous[1]:
                        return scan  # not newest first: cannot tell where the window ends
                    previous = created
                    if created[1] < since:
                        scan.complete = True
                        return scan
                if str(identity.order_id) in attributed:
                    continue
                match identity.compare(order):
                    case "match":
                        scan.matches.append(identity)
                    case "unresolved":
                        scan.unresolved.append(identity)
                    case "other":
                        pass
            if self._last_page(pagination, len(listing.orders)):
                scan.complete = True
                return scan
        return scan

    async def _identity(self, entry: _Order) -> _Identity:
        cached = self._identities.get(entry.order_id)
        if cached is not None:
            return cached
        identity = _Identity.of(entry)
        if not identity.complete:
            detail = await self._detail(entry.order_id, placed=False)
            if detail is not None:
                identity = _Identity.of(detail, identity)
        if identity.complete:
            self._identities[entry.order_id] = identity
        return identity

    def _result(self, placed: _Order, order: OrderRequest | None) -> OrderResult:
        """The domain view of an order; ``order`` (when we just bought it) is checked too."""
        order_id = str(placed.order_id)
        status = (placed.status or "").strip().lower()
        if status in _FAILED_STATUSES:
            return OrderResult(
                provider_order_id=order_id,
                state=OrderState.FAILED,
                failure_reason=f"CardPlusPay reports order {placed.label} as {status}.",
            )
        codes = [c for c in placed.codes if c.code is not None]
        if len(codes) > 1 or (order is not None and not self._as_ordered(placed, order)):
            raise OutcomeUnknown(
                f"CardPlusPay order {placed.label} is not the one card that was approved. "
                "It may have been paid: a person must check the CardPlusPay dashboard."
            )
        code_status = (codes[0].status or "completed").strip().lower() if codes else ""
        if code_status in _FAILED_STATUSES:
            return OrderResult(
                provider_order_id=order_id,
                state=OrderState.FAILED,
                failure_reason=f"CardPlusPay reports the card of order {placed.label} as "
                f"{code_status}.",
            )
        charged = self._charged_for(placed)
        if status != "completed" or not codes or code_status != "completed":
            return OrderResult(
                provider_order_id=order_id, state=OrderState.PENDING, charged=charged
            )
        code = codes[0]
        return OrderResult(
            provider_order_id=order_id,
            state=OrderState.COMPLETED,
            redemption=Redemption(
                code=code.code,
                pin=code.pin or code.meta(_PIN_KEYS),
                url=code.url or code.redemption_url or code.redeem_url or code.meta(_URL_KEYS),
            ),
            charged=charged,
        )

    @staticmethod
    def _as_ordered(placed: _Order, order: OrderRequest) -> bool:
        """Whether what CardPlusPay issued is the approved item and face value."""
        identity = _Identity.of(placed)
        if identity.item_code is not None and identity.item_code != order.product_id:
            return False
        return identity.face is None or identity.face == order.face_value.amount

    def _charged_for(self, placed: _Order) -> Money | None:
        currencies = {(c.currency or "").strip().upper() for c in placed.codes}
        amounts = [c.charged_amount for c in placed.codes]
        money: Money | None = None
        if (
            len(currencies) == 1
            and (currency := currencies.pop())
            and re.fullmatch(r"[A-Z]{3}", currency)
        ):
            if placed.codes and all(a is not None for a in amounts):
                money = Money(amount=sum((a for a in amounts if a), Decimal(0)), currency=currency)
            elif placed.amount is not None:
                money = Money(amount=placed.amount, currency=currency)
        if money is not None:
            self._charged[placed.order_id] = money
            return money
        return self._charged.get(placed.order_id)


def _catalog_shape(data: Any) -> dict[str, Any]:
    """The catalog answer's shape is undocumented: accept a list, or a list under a known key."""
    items = find_list(data, ("products", "items", "catalog", "data"))
    if items is not None:
        pagination = data.get("pagination") if isinstance(data, dict) else None
        return {"items": items, "pagination": pagination}
    raise ProviderUnavailable(f"{_DISPLAY} sent a catalog we could not read.")
