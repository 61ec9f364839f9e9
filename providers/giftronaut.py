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

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Self
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)

from bot.domain import Money
from providers.base import (
    IssuedCard,
    OrderRequest,
    OrderResult,
    OrderState,
    Product,
    SendLog,
    SharedOrder,
)
from providers.errors import (
    AuthenticationFailed,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidProduct,
    OrderDeclined,
    OutcomeUnknown,
    OutOfStock,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from providers.http import HttpProvider, RetryPolicy, find_list
from providers.settings import ApiUrl, ProviderSettings, Secret, read_settings

log = logging.getLogger(__name__)

PRODUCTION_URL = "https://api.giftronaut.com"
DEFAULT_SCOPE = "catalog.read orders.read orders.write orders.cancel"
# Renew the access token this many seconds before Giftronaut says it expires.
TOKEN_EXPIRY_MARGIN = 60.0
# The idempotency guide's window; replaying a key after it would place a second order.
REPLAY_WINDOW = 24 * 3600.0
# Replays of a key first sent longer ago than this are refused (OutcomeUnknown).
SAFE_REPLAY_AGE = REPLAY_WINDOW - 3600.0
MAX_KEY_LENGTH = 64

_TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a path, not a secret
_KEY_OK = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_HASHED_KEY_PREFIX = "rewardbot-sha256-"
_CODE_OK = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_KINDS = {"branded": "BRANDED_CARD", "choice": "CHOICE_CARD"}
_OUT_OF_STOCK_CODES = frozenset({"OUT_OF_STOCK", "SOLD_OUT", "PRODUCT_UNAVAILABLE"})
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


class OrderNotCancelable(OrderDeclined):
    """Giftronaut cannot cancel the order: it was not scheduled, was sent, or is due within an
    hour (``409 ORDER_NOT_CANCELABLE``)."""


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
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone") from None
        return value


# -- settings ---------------------------------------------------------------------------------


class _Settings(ProviderSettings):
    client_id: str = Field(alias="GIFTRONAUT_CLIENT_ID", min_length=1)
    client_secret: Secret = Field(alias="GIFTRONAUT_CLIENT_SECRET")
    api_url: ApiUrl = Field(default=PRODUCTION_URL, alias="GIFTRONAUT_API_URL")
    scope: str = Field(default=DEFAULT_SCOPE, alias="GIFTRONAUT_SCOPE", min_length=1)
    sender_name: str = Field(
        default="Rewardbot", alias="GIFTRONAUT_SENDER_NAME", min_length=1, max_length=100
    )


# -- vendor JSON (private) ----------------------------------------------------------------------


def _as_str(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


_Id = Annotated[str, BeforeValidator(_as_str), Field(min_length=1, max_length=200)]


def _unwrap(value: object, keys: tuple[str, ...]) -> object:
    if isinstance(value, dict):
        for key in keys:
            if key in value and isinstance(value[key], dict | list):
                return value[key]
    return value


class _Token(BaseModel):
    access_token: SecretStr
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int = Field(gt=0)

    @field_validator("token_type")
    @classmethod
    def _bearer(cls, value: str) -> str:
        if value.lower() != "bearer":
            raise ValueError("not a bearer token")
        return value


@dataclass
class _CachedToken:
    token: SecretStr
    renew_at: float


# The token a request in this task authenticated with, so a 401 drops only that token (a
# concurrent call may already have minted a fresh one).
_TOKEN_USED: contextvars.ContextVar[_CachedToken | None] = contextvars.ContextVar(
    "giftronaut_token_used", default=None
)


def _unread_if_unreadable(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """An undocumented field we would like but can do without: read it, or leave it unread
    (logged). Only ``orderId`` and ``status`` may make a placed order unreadable."""
    try:
        return handler(value)
    except ValidationError:
        log.warning("giftronaut: an order field in an unexpected shape was left unread")
        return None


class _Cost(BaseModel):
    amount: Decimal
    currency: str


class _OrderRecipient(BaseModel):
    # ``rewardLink`` is deliberately not a field: the link must not enter the bot at all.
    email: Annotated[str | None, WrapValidator(_unread_if_unreadable)] = None


class _Order(BaseModel):
    order_id: _Id = Field(validation_alias=AliasChoices("orderId", "id"))
    status: str
    total_cost: Annotated[_Cost | None, WrapValidator(_unread_if_unreadable)] = Field(
        default=None, validation_alias="totalCost"
    )
    recipients: Annotated[
        list[Annotated[_OrderRecipient | None, WrapValidator(_unread_if_unreadable)]] | None,
        WrapValidator(_unread_if_unreadable),
    ] = None

    @model_validator(mode="before")
    @classmethod
    def _data_wrapper(cls, value: object) -> object:
        if isinstance(value, dict) and "orderId" not in value:
            return _unwrap(value, ("data", "order"))
        return value

    @property
    def emails(self) -> list[str]:
        """The addresses of the cards the order lists, as far as they could be read."""
        return [r.email for r in self.recipients or () if r is not None and r.email]


class _Resent(BaseModel):
    requeued: int

    @model_validator(mode="before")
    @classmethod
    def _data_wrapper(cls, value: object) -> object:
        if isinstance(value, dict) and "requeued" not in value:
            return _unwrap(value, ("data",))
        return value


_Amount = Annotated[Decimal, Field(gt=0)]


class _CatalogItem(BaseModel):
    product_id: _Id = Field(validation_alias=AliasChoices("productId", "id"))
    name: str | None = Field(
        default=None, validation_alias=AliasChoices("name", "brandName", "productName", "title")
    )
    currency: str | None = Field(
        default=None, validation_alias=AliasChoices("currency", "currencyCode")
    )
    prices: list[_Amount] | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "prices", "priceList", "pricePoints", "denominations", "amounts"
        ),
    )
    min_value: _Amount | None = Field(
        default=None, validation_alias=AliasChoices("minAmount", "minPrice", "minValue")
    )
    max_value: _Amount | None = Field(
        default=None, validation_alias=AliasChoices("maxAmount", "maxPrice", "maxValue")
    )


# -- the adapter --------------------------------------------------------------------------------


class GiftronautProvider(HttpProvider):
    """Giftronaut over its REST API; see the module docstring for the assumptions."""

    name: ClassVar[str] = "giftronaut"
    needs_recipient_email: ClassVar[bool] = True
    can_resend: ClassVar[bool] = True
    schedules_natively: ClassVar[bool] = True
    # Giftronaut cancels a scheduled order only up to an hour before its send time.
    cancel_cutoff: ClassVar[timedelta] = timedelta(hours=1)
    # ``recipients[]`` takes "one or more"; the docs give no maximum, so the bot keeps to the
    # size of its largest bulk reward.
    max_recipients_per_order: ClassVar[int] = 20
    safe_replay_age: ClassVar[timedelta | None] = timedelta(seconds=SAFE_REPLAY_AGE)

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        client_id: str,
        client_secret: SecretStr,
        base_url: str = PRODUCTION_URL,
        scope: str = DEFAULT_SCOPE,
        sender_name: str = "Rewardbot",
        refund_option: bool = False,
        retry: RetryPolicy | None = None,
        poll_interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(http, base_url, retry=retry)
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._sender_name = sender_name
        self._refund_option = refund_option
        self.poll_interval = poll_interval
        self._clock = clock
        self._token: _CachedToken | None = None
        self._token_lock = asyncio.Lock()
        self._currencies: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"GiftronautProvider(base_url={self._base_url!r}, client_id={self._client_id!r})"

    @classmethod
    def from_env(cls, http: httpx.AsyncClient) -> Self:
        settings = read_settings(_Settings)
        return cls(
            http,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            base_url=settings.api_url,
            scope=settings.scope,
            sender_name=settings.sender_name,
        )

    # -- catalog ---------------------------------------------------------------------------

    async def list_products(self) -> list[Product]:
        products = [
            *await self._catalog("branded"),
            *await self._catalog("choice"),
        ]
        self._currencies = {p.product_id: p.currency for p in products}
        return products

    async def _catalog(self, kind: str) -> list[Product]:
        response = await self._request("GET", f"/api/v1/catalog/{kind}-cards")
        raw = find_list(self._json(response), ("products", "data", "items"), depth=1)
        if raw is None:
            raise ProviderUnavailable(f"{self.name} sent a catalog we could not read.")
        products = []
        for entry in raw:
            product = self._product(kind, entry)
            if product is not None:
                products.append(product)
        return products

    def _product(self, kind: str, entry: object) -> Product | None:
        try:
            item = _CatalogItem.model_validate(entry)
        except ValidationError:
            ident = entry.get("productId", entry.get("id")) if isinstance(entry, dict) else None
            log.warning("%s: skipped unreadable %s catalog item %r", self.name, kind, ident)
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
                provider=self.name,
                product_id=f"{kind}:{item.product_id}",
                name=name,
                currency=currency,
                fixed=fixed,
                min_value=low,
                max_value=high,
            )
        except ValueError:
            log.warning("%s: skipped %s catalog item %r", self.name, kind, item.product_id)
            return None

    # -- orders ----------------------------------------------------------------------------

    async def place_order(
        self,
        order: OrderRequest,
        sends: SendLog | None = None,
        *,
        schedule: ScheduledSend | None = None,
    ) -> OrderResult:
        """Place the order (IMMEDIATE unless ``schedule`` is given) or replay it by its key."""
        return await self.place_shared_order(SharedOrder.of(order), sends, schedule=schedule)

    async def place_shared_order(
        self,
        order: SharedOrder,
        sends: SendLog | None = None,
        *,
        schedule: ScheduledSend | None = None,
    ) -> OrderResult:
        """One order with a ``recipients[]`` entry per line (a one-line order is the same body
        :meth:`place_order` sends), placed or replayed by its key."""
        kind, vendor_product_id = self._split_product_id(order.product_id)
        known_currency = self._currencies.get(order.product_id)
        for line in order.lines:
            if known_currency is not None and known_currency != line.face_value.currency:
                raise InvalidProduct(
                    f"This Giftronaut card is sold in {known_currency}, not "
                    f"{line.face_value.currency}."
                )
        if schedule is None and order.send_at is not None:
            utc = order.send_at.astimezone(UTC).replace(tzinfo=None, microsecond=0)
            schedule = ScheduledSend(at=utc, timezone="UTC")
        key = giftronaut_key(order.idempotency_key)
        response = await self._request(
            "POST",
            f"/api/v1/orders/{kind}-cards",
            json_body=self._order_body(order, key, vendor_product_id, schedule),
            headers={"X-Idempotency-Key": key, "X-Request-Id": str(uuid.uuid4())},
            sends=sends or SendLog(),
        )
        return self._result(self._parse_order(response))

    async def get_order(self, provider_order_id: str) -> OrderResult:
        return self._result(await self._fetch_order(provider_order_id))

    async def cancel_order(self, provider_order_id: str) -> None:
        """Cancel a scheduled order (at least an hour before its send time).

        Raises :class:`OrderNotCancelable` for an immediate, already sent or too-late order.
        Cancelling an order that is already cancelled succeeds (a retried cancel whose first
        answer was lost).
        """
        try:
            await self._request("DELETE", f"{self._order_path(provider_order_id)}/cancel")
        except OrderNotCancelable:
            current = await self._fetch_order(provider_order_id)
            if current.status.upper() == "CANCELED":
                return
            raise

    async def resend(
        self, provider_order_id: str, recipient_email: str | None, new_email: str | None = None
    ) -> None:
        """Email the card of ``recipient_email`` again, to ``new_email`` instead if given.

        An order with one recipient is resent to whatever address it now holds (an earlier
        resend may have corrected it); in a shared order the recipient must be listed, once.
        A redirect whose answer was lost (the retry then finds the old address gone) is
        recognised by reading the order: it now lists the new address instead.
        """
        placed = await self._fetch_order(provider_order_id)
        emails = placed.emails
        wanted = (recipient_email or "").strip().lower()
        listed = (
            emails
            if len(placed.recipients or ()) == 1
            else [e for e in emails if e.lower() == wanted]
        )
        if len(listed) != 1:
            raise OrderDeclined(
                f"Giftronaut order {placed.order_id} does not list this recipient's email "
                "address exactly once, so their card cannot be resent from here."
            )
        recipient = {"email": listed[0]}
        redirect = new_email is not None and new_email.strip().lower() != listed[0].lower()
        if redirect:
            assert new_email is not None
            recipient["updatedEmail"] = new_email.strip()
        try:
            response = await self._request(
                "POST",
                f"{self._order_path(provider_order_id)}/resend",
                json_body={"recipients": [recipient]},
                headers={"X-Request-Id": str(uuid.uuid4())},
            )
            requeued = self._parse(response, _Resent).requeued
        except ProviderError:
            if redirect and await self._redirected(provider_order_id, recipient):
                return
            raise
        if requeued < 1 and not (redirect and await self._redirected(provider_order_id, recipient)):
            raise OrderDeclined("Giftronaut did not resend the card (no recipient was requeued).")

    async def _redirected(self, provider_order_id: str, recipient: dict[str, str]) -> bool:
        """Whether the order now lists the new address and no longer the old one."""
        emails = {e.lower() for e in (await self._fetch_order(provider_order_id)).emails}
        return (
            recipient["updatedEmail"].lower() in emails and recipient["email"].lower() not in emails
        )

    # -- order helpers ---------------------------------------------------------------------

    @staticmethod
    def _split_product_id(product_id: str) -> tuple[str, str]:
        kind, _, vendor_id = product_id.partition(":")
        if kind not in _KINDS or not vendor_id:
            raise InvalidProduct(f"{product_id!r} is not a Giftronaut card.")
        return kind, vendor_id

    def _order_body(
        self, order: SharedOrder, key: str, product_id: str, schedule: ScheduledSend | None
    ) -> dict[str, Any]:
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
            "senderName": self._sender_name,
            "subject": f"You have received a gift card from {self._sender_name}",
        }
        if order.message.strip():
            email_setting["message"] = order.message
        return {
            "idempotencyKey": key,
            "productId": product_id,
            "sendTiming": timing,
            "emailSetting": email_setting,
            "recipients": recipients,
            "refundOption": self._refund_option,
        }

    @staticmethod
    def _order_path(provider_order_id: str) -> str:
        return f"/api/v1/orders/{quote(provider_order_id, safe='')}"

    async def _fetch_order(self, provider_order_id: str) -> _Order:
        response = await self._request("GET", self._order_path(provider_order_id))
        return self._parse_order(response)

    def _parse_order(self, response: httpx.Response) -> _Order:
        return self._parse(response, _Order)

    def _result(self, placed: _Order) -> OrderResult:
        status = placed.status.upper()
        if status in _PENDING_STATUSES:
            return OrderResult(provider_order_id=placed.order_id, state=OrderState.PENDING)
        if status == "COMPLETE":
            # One entry per issued card: a recipient missing from the list got none.
            return OrderResult(
                provider_order_id=placed.order_id,
                state=OrderState.COMPLETED,
                delivered_by_provider=True,
                charged=self._charged(placed),
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

    def _charged(self, placed: _Order) -> Money | None:
        if placed.total_cost is None:
            return None
        try:
            return Money(
                amount=placed.total_cost.amount, currency=placed.total_cost.currency.upper()
            )
        except ValidationError:
            log.warning("%s: unreadable totalCost on order %s", self.name, placed.order_id)
            return None

    # -- authentication --------------------------------------------------------------------

    async def _auth_headers(self) -> dict[str, str]:
        token = await self._current_token()
        _TOKEN_USED.set(token)
        return {"Authorization": f"Bearer {token.token.get_secret_value()}"}

    async def _on_unauthorized(self) -> bool:
        used = _TOKEN_USED.get()
        async with self._token_lock:
            if self._token is not None and (used is None or self._token is used):
                self._token = None
        return True

    async def _current_token(self) -> _CachedToken:
        token = self._token
        if token is not None and self._clock() < token.renew_at:
            return token
        async with self._token_lock:
            token = self._token
            if token is None or self._clock() >= token.renew_at:
                token = self._token = await self._mint_token()
            return token

    async def _mint_token(self) -> _CachedToken:
        """``POST /oauth2/token``, retried like any safe call (it has no side effect)."""
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret.get_secret_value(),
            "scope": self._scope,
        }
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.post(
                    self._base_url + _TOKEN_PATH, data=form, headers={"Accept": "application/json"}
                )
            except httpx.TimeoutException:
                error: ProviderError = ProviderUnavailable(
                    f"{self.name} did not answer our sign-in in time."
                )
            except httpx.TransportError:
                error = ProviderUnavailable(f"The connection to {self.name} failed at sign-in.")
            else:
                if response.is_success:
                    token = self._parse(response, _Token)
                    lifetime = float(token.expires_in)
                    margin = min(TOKEN_EXPIRY_MARGIN, lifetime / 2)
                    return _CachedToken(token.access_token, self._clock() + lifetime - margin)
                if response.status_code == 429:
                    error = RateLimited(
                        f"{self.name} is rate limiting our sign-in.", self._retry_after(response)
                    )
                elif response.status_code >= 500:
                    error = ProviderUnavailable(
                        f"{self.name} had a server error at sign-in (HTTP {response.status_code})."
                    )
                else:
                    raise self._token_refusal(response)
            if attempt >= self._retry.attempts:
                raise error
            await asyncio.sleep(
                error.retry_after if isinstance(error, RateLimited) else self._retry.delay(attempt)
            )

    def _token_refusal(self, response: httpx.Response) -> AuthenticationFailed:
        code = _error_code(response)
        if code == "invalid_scope":
            return AuthenticationFailed(
                f"{self.name} refused the requested scopes ({self._scope}); allow them for the "
                "API app or change GIFTRONAUT_SCOPE."
            )
        return AuthenticationFailed(
            f"{self.name} rejected our client credentials "
            f"({code or f'HTTP {response.status_code}'}): check GIFTRONAUT_CLIENT_ID and "
            "GIFTRONAUT_CLIENT_SECRET."
        )

    # -- error mapping ---------------------------------------------------------------------

    def _refusal_for(self, response: httpx.Response) -> ProviderError:
        status = response.status_code
        code = _error_code(response)
        shown = code or f"HTTP {status}"
        method, path = response.request.method, response.request.url.path
        creating = method == "POST" and path.endswith("-cards")
        if status == 401:
            return AuthenticationFailed(
                f"{self.name} rejected our access token: check GIFTRONAUT_CLIENT_ID and "
                "GIFTRONAUT_CLIENT_SECRET."
            )
        if status == 403:
            return AuthenticationFailed(
                f"{self.name} refused access ({shown}): the API app may lack a scope this needs "
                f"(requested: {self._scope})."
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
