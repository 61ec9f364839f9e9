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

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import quote

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretBytes,
    SecretStr,
    ValidationError,
    field_validator,
)

from bot.domain import CurrencyCode, Money
from providers.base import (
    IssuedCard,
    OrderRequest,
    OrderResult,
    OrderState,
    Product,
    Redemption,
    SendLog,
    SharedOrder,
    WebhookNotice,
)
from providers.errors import (
    AuthenticationFailed,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidProduct,
    OrderDeclined,
    OrderRefused,
    OutcomeUnknown,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    RetryableProviderError,
    WebhookRejected,
)
from providers.http import HttpProvider, RetryPolicy
from providers.settings import ApiUrl, BlankIsUnset, ProviderSettings, Secret, read_settings

log = logging.getLogger(__name__)

API_VERSION = "2024-02-05"
PRODUCTION_URL = "https://api.runa.io/v2"
WEBHOOK_TOLERANCE = 5 * 60  # seconds, either way
_MAX_CATALOG_PAGES = 50
_CATALOG_PAGE_SIZE = "500"
_LOOKUP_PAGE_SIZE = "100"


# -- settings ------------------------------------------------------------------------------


class _RunaSettings(ProviderSettings):
    """Runa's environment settings. Field aliases are the public environment names."""

    api_key: Secret = Field(alias="RUNA_API_KEY")
    api_url: ApiUrl = Field(default=PRODUCTION_URL, alias="RUNA_API_URL")
    webhook_secret: Annotated[SecretStr | None, BlankIsUnset] = Field(
        default=None, alias="RUNA_WEBHOOK_SECRET"
    )
    payment_method: Literal["ACCOUNT_BALANCE"] = Field(
        default="ACCOUNT_BALANCE", alias="RUNA_PAYMENT_METHOD"
    )
    payment_currency: Annotated[CurrencyCode | None, BlankIsUnset] = Field(
        default=None, alias="RUNA_PAYMENT_CURRENCY"
    )
    execution_mode: Literal["async", "sync"] = Field(default="async", alias="RUNA_EXECUTION_MODE")

    @field_validator("webhook_secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _webhook_key(value)
        return value


def _webhook_key(secret: SecretStr) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` signing secret (ValueError if malformed)."""
    encoded = secret.get_secret_value().strip().removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "must be the whsec_… signing secret from the Runa webhook portal"
        ) from None
    if not key:
        raise ValueError("must be the whsec_… signing secret from the Runa webhook portal")
    return key


# -- vendor JSON (private) -----------------------------------------------------------------


class _Vendor(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Error(_Vendor):
    type: str | None = None
    message: str | None = None


class _ValidationDetail(_Vendor):
    type: str | None = None
    message: str | None = None
    location: list[str] = Field(default_factory=list)

    @field_validator("location", mode="before")
    @classmethod
    def _strings(cls, value: object) -> object:
        return [str(v) for v in value] if isinstance(value, list) else value


class _ValidationError(_Error):
    details: list[_ValidationDetail] = Field(default_factory=list)


class _Cursors(_Vendor):
    after: str | None = None


class _Pagination(_Vendor):
    cursors: _Cursors = _Cursors()


class _Denominations(_Vendor):
    type: str
    minimum_value: Decimal | None = None
    maximum_value: Decimal | None = None
    available_list: list[Decimal] | None = None


class _GiftCard(_Vendor):
    denominations: _Denominations | None = None


class _Product(_Vendor):
    code: str
    name: str
    currency: str
    is_orderable: bool = False
    payout_type: str | None = None
    gift_card: _GiftCard | None = None


class _Catalog(_Vendor):
    catalog: list[dict[str, Any]] = Field(default_factory=list)
    pagination: _Pagination | None = None


class _Payout(_Vendor):
    status: str | None = None
    url: str | None = None


class _Item(_Vendor):
    id: str | None = None
    face_value: Decimal | None = None
    payout: _Payout | None = None


class _Order(_Vendor):
    """Every order shape in one: accepted, incomplete, completed (basic or full details)."""

    id: str
    status: str
    message: str | None = None
    description: str | None = None
    currency: str | None = None
    total_price: Decimal | None = None
    items: list[_Item] | None = None
    metadata: dict[str, Any] | None = None


class _OrderPage(_Vendor):
    items: list[_Order] = Field(default_factory=list)
    pagination: _Pagination | None = None


class _WebhookBody(_Vendor):
    id: str | None = None
    status: str | None = None


# -- errors private to the adapter ---------------------------------------------------------


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


# -- the adapter ---------------------------------------------------------------------------


class RunaProvider(HttpProvider):
    """Runa's API ``2024-02-05``; see the module docstring for the documented behaviour."""

    name: ClassVar[str] = "runa"
    api_key_header: ClassVar[str | None] = "X-Api-Key"
    # ``NewOrderDetails.items``: "The maximum number of items per order is 200."
    max_recipients_per_order: ClassVar[int] = 200

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: SecretStr,
        base_url: str = PRODUCTION_URL,
        webhook_secret: SecretStr | None = None,
        payment_currency: str | None = None,
        execution_mode: Literal["async", "sync"] = "async",
        retry: RetryPolicy | None = None,
        poll_interval: float = 5.0,
        rate_limit_wait: float = 2.0,
        in_progress_wait: float = 2.0,
        lookup_pages: int = 5,
    ) -> None:
        super().__init__(
            http, base_url, retry=retry, rate_limit_wait=rate_limit_wait, api_key=api_key
        )
        self._webhook_key = (
            None if webhook_secret is None else SecretBytes(_webhook_key(webhook_secret))
        )
        self._payment_currency = payment_currency
        self._execution_mode = execution_mode
        self.poll_interval = poll_interval
        self._in_progress_wait = in_progress_wait
        self._lookup_pages = lookup_pages

    def __repr__(self) -> str:
        webhooks = "on" if self._webhook_key else "off"
        return f"RunaProvider(base_url={self._base_url!r}, webhooks={webhooks})"

    @classmethod
    def from_env(cls, http: httpx.AsyncClient) -> Self:
        settings = read_settings(_RunaSettings)
        return cls(
            http,
            api_key=settings.api_key,
            base_url=settings.api_url,
            webhook_secret=settings.webhook_secret,
            payment_currency=settings.payment_currency,
            execution_mode=settings.execution_mode,
        )

    # -- HttpProvider hooks ----------------------------------------------------------------

    async def _auth_headers(self) -> dict[str, str]:
        return {**await super()._auth_headers(), "X-Api-Version": API_VERSION}

    def _error_for(self, response: httpx.Response) -> ProviderError:
        error = self._error_body(response, _Error)
        if error.type == "idempotency_in_progress":
            return _StillProcessing(
                "Runa is still processing this order; waiting before asking again.",
                self._in_progress_wait,
            )
        if response.status_code >= 500 and error.type is not None:
            return _RunaServerError(
                f"Runa had a server error (HTTP {response.status_code}, {error.type})."
            )
        return super()._error_for(response)

    def _refusal_for(self, response: httpx.Response) -> ProviderError:
        status = response.status_code
        if status == 422:
            return self._validation_refusal(response)
        error = self._error_body(response, _Error)
        known = _REFUSALS.get(error.type or "")
        if known is not None:
            error_class, message = known
            if error.type in _WITH_VENDOR_DETAIL and error.message:
                message = f"{message}: {self._vendor_text(error.message)}"
            elif error.type in _WITH_VENDOR_DETAIL:
                message += "."
            return error_class(message)
        if status in (401, 403):
            return AuthenticationFailed("Runa rejected our API key (check RUNA_API_KEY).")
        kind = f", {self._vendor_text(error.type)}" if error.type else ""
        return OrderDeclined(f"Runa refused the request (HTTP {status}{kind}).")

    def _validation_refusal(self, response: httpx.Response) -> ProviderError:
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
        detail = self._vendor_text("; ".join(problems)) or "no details given"
        return error_class(f"Runa rejected the order details ({detail}).")

    # -- catalog ---------------------------------------------------------------------------

    async def list_products(self) -> list[Product]:
        products: list[Product] = []
        after: str | None = None
        seen: set[str] = set()
        for _ in range(_MAX_CATALOG_PAGES):
            params = {"is_orderable": "true", "limit": _CATALOG_PAGE_SIZE}
            if after:
                params["after"] = after
            page = self._parse(await self._request("GET", "/product", params=params), _Catalog)
            products += [p for raw in page.catalog if (p := self._product(raw)) is not None]
            after = page.pagination.cursors.after if page.pagination else None
            if not page.catalog or not after or after in seen:
                break
            seen.add(after)
        else:
            log.warning("runa catalog: stopped after %s pages", _MAX_CATALOG_PAGES)
        return products

    def _product(self, raw: dict[str, Any]) -> Product | None:
        """One orderable gift card, or ``None`` (logged) for what the bot cannot offer."""
        try:
            vendor = _Product.model_validate(raw)
        except ValidationError:
            log.warning("runa catalog: skipped an unreadable product %r", raw.get("code"))
            return None
        if not vendor.is_orderable or vendor.payout_type != "gift_card":
            return None
        denominations = vendor.gift_card.denominations if vendor.gift_card else None
        try:
            if denominations is None:
                raise ValueError("no denominations")
            if denominations.type not in ("fixed", "open"):
                raise ValueError(f"unknown denomination type {denominations.type!r}")
            fixed = denominations.type == "fixed"
            return Product.from_face_values(
                provider=self.name,
                product_id=vendor.code,
                name=vendor.name,
                currency=vendor.currency,
                fixed=denominations.available_list if fixed else None,
                min_value=None if fixed else denominations.minimum_value,
                max_value=None if fixed else denominations.maximum_value,
            )
        except ValueError as exc:
            log.warning("runa catalog: skipped product %s (%s)", vendor.code, exc)
            return None

    # -- orders ----------------------------------------------------------------------------

    def _order_body(self, order: SharedOrder) -> dict[str, Any]:
        """The order as Runa wants it, an item per line; the same ``order`` always gives the
        same body."""
        metadata = {"rewardbot_reference": order.reference[:200]}
        if len(order.idempotency_key) <= 200:
            metadata["rewardbot_idempotency_key"] = order.idempotency_key
        return {
            "payment_method": {
                "type": "ACCOUNT_BALANCE",
                "currency": self._payment_currency or order.lines[0].face_value.currency,
            },
            "items": [
                {
                    "face_value": line.face_value.amount,
                    "distribution_method": {"type": "PAYOUT_LINK"},
                    "products": {"type": "SINGLE", "value": order.product_id},
                }
                for line in order.lines
            ],
            "description": order.reference[:128],
            "metadata": metadata,
        }

    async def place_order(self, order: OrderRequest, sends: SendLog | None = None) -> OrderResult:
        return await self.place_shared_order(SharedOrder.of(order), sends)

    async def place_shared_order(
        self, order: SharedOrder, sends: SendLog | None = None
    ) -> OrderResult:
        """One order with an item (a payout link) per line; a one-line order is the body
        :meth:`place_order` sends."""
        try:
            response = await self._request(
                "POST",
                "/order",
                json_body=self._order_body(order),
                headers={
                    "X-Idempotency-Key": order.idempotency_key,
                    "X-Execution-Mode": self._execution_mode,
                },
                sends=sends or SendLog(),
            )
        except _RunaServerError as error:
            return await self._after_server_error(order, error)
        accepted = self._parse(response, _Order)
        if accepted.status in ("COMPLETED", "FAILED") and accepted.items is None:
            # Settled, but in the short ``{id, status}`` shape (a replayed 202): read it whole.
            return await self.get_order(accepted.id)
        return self._result(accepted)

    async def _after_server_error(self, order: SharedOrder, error: _RunaServerError) -> OrderResult:
        """Runa kept answering with its own 5xx, which its idempotency cache may replay for
        30 days: look the order up; if it cannot be found, a human must check."""
        log.warning(
            "runa order %s: %s; looking the order up by its reference",
            order.reference,
            error.message,
        )
        try:
            found = await self._find_order(order)
        except (RetryableProviderError, OrderRefused) as lookup_error:
            log.warning("runa order lookup for %s failed: %s", order.reference, lookup_error)
            found = None
        if found is not None:
            return found
        raise OutcomeUnknown(
            f"Runa kept answering with a server error and the order cannot be found, so it may "
            f"or may not have been placed. Look for reference {order.reference} in the Runa "
            "portal before ordering again."
        ) from None

    async def _find_order(self, order: SharedOrder) -> OrderResult | None:
        after: str | None = None
        for _ in range(self._lookup_pages):
            params = {"limit": _LOOKUP_PAGE_SIZE}
            if after:
                params["after"] = after
            page = self._parse(await self._request("GET", "/order", params=params), _OrderPage)
            for candidate in page.items:
                if candidate.description != order.reference[:128]:
                    continue
                full = await self._fetch(candidate.id)
                if (full.metadata or {}).get("rewardbot_idempotency_key") == order.idempotency_key:
                    return self._result(full)
            after = page.pagination.cursors.after if page.pagination else None
            if not page.items or not after:
                break
        return None

    async def _fetch(self, provider_order_id: str) -> _Order:
        response = await self._request("GET", f"/order/{quote(provider_order_id, safe='')}")
        return self._parse(response, _Order)

    async def get_order(self, provider_order_id: str) -> OrderResult:
        try:
            return self._result(await self._fetch(provider_order_id))
        except OrderRefused as refusal:
            raise OutcomeUnknown(
                f"Runa order {provider_order_id} was placed but its status cannot be read "
                f"({refusal.message}); check it in the Runa portal."
            ) from None

    def _result(self, order: _Order) -> OrderResult:
        if order.status == "FAILED":
            reason = self._vendor_text(order.message)
            return OrderResult(
                provider_order_id=order.id,
                state=OrderState.FAILED,
                failure_reason=f"Runa could not issue the card: {reason}"
                if reason
                else "Runa could not issue the card.",
            )
        if order.status != "COMPLETED":
            if order.status != "PROCESSING":
                log.warning("runa order %s has unknown status %r", order.id, order.status)
            return OrderResult(provider_order_id=order.id, state=OrderState.PENDING)
        items = order.items or []
        if not items:
            raise OutcomeUnknown(
                f"Runa order {order.id} completed without payout links; check it in the Runa "
                "portal."
            )
        return OrderResult(
            provider_order_id=order.id,
            state=OrderState.COMPLETED,
            # One item: the order's only card. Several: a shared order, whose recipients find
            # theirs among the cards.
            redemption=self._redemption(order.id, items[0]) if len(items) == 1 else None,
            cards=tuple(self._card(order.id, item) for item in items),
            charged=self._charged(order),
        )

    def _card(self, order_id: str, item: _Item) -> IssuedCard:
        """An item as a card; an unusable link stays in the list without its redemption, so
        the recipients' cards keep their places (its recipient needs review)."""
        try:
            redemption: Redemption | None = self._redemption(order_id, item)
        except OutcomeUnknown as unusable:
            log.warning("runa order %s, item %s: %s", order_id, item.id, unusable.message)
            redemption = None
        return IssuedCard(card_id=item.id or "", face_value=item.face_value, redemption=redemption)

    @staticmethod
    def _redemption(order_id: str, item: _Item) -> Redemption:
        payout = item.payout
        url = (payout.url or "").strip() if payout else ""
        if payout is None or not url:
            raise OutcomeUnknown(
                f"Runa order {order_id} completed without a payout link; check it in the "
                "Runa portal."
            )
        if payout.status in ("CANCELLED", "EXPIRED"):
            raise OutcomeUnknown(
                f"Runa order {order_id} completed but its payout link is "
                f"{str(payout.status).lower()}; check it in the Runa portal."
            )
        return Redemption(url=SecretStr(url))

    @staticmethod
    def _charged(order: _Order) -> Money | None:
        if order.total_price is None or order.currency is None:
            return None
        try:
            return Money(amount=order.total_price, currency=order.currency)
        except (ValidationError, InvalidOperation):
            log.warning("runa order %s: unreadable total price", order.id)
            return None

    # -- webhooks --------------------------------------------------------------------------

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookNotice | None:
        if self._webhook_key is None:
            raise WebhookRejected(
                "Runa webhooks are not configured (RUNA_WEBHOOK_SECRET is not set)."
            )
        self._verify_signature(headers, body)
        try:
            data = json.loads(body)
        except ValueError:
            raise WebhookRejected("The Runa webhook body is not JSON.") from None
        if not isinstance(data, dict):
            raise WebhookRejected("The Runa webhook body is not a JSON object.")
        try:
            event = _WebhookBody.model_validate(data)
        except ValidationError:
            raise WebhookRejected("The Runa webhook body is not understood.") from None
        if event.id and event.status in ("COMPLETED", "FAILED", "PROCESSING"):
            return WebhookNotice(provider_order_id=event.id)
        return None  # e.g. product.update: authentic, but not about an order

    def _verify_signature(self, headers: Mapping[str, str], body: bytes) -> None:
        assert self._webhook_key is not None
        lowered = {k.lower(): v for k, v in headers.items()}

        def header(name: str) -> str:
            return (lowered.get(f"webhook-{name}") or lowered.get(f"svix-{name}") or "").strip()

        msg_id, timestamp, signatures = header("id"), header("timestamp"), header("signature")
        if not (msg_id and timestamp and signatures):
            raise WebhookRejected("The Runa webhook is missing its signature headers.")
        try:
            sent_at = int(timestamp)
        except ValueError:
            raise WebhookRejected("The Runa webhook timestamp is not a number.") from None
        if abs(time.time() - sent_at) > WEBHOOK_TOLERANCE:
            raise WebhookRejected("The Runa webhook timestamp is too old or in the future.")
        signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
        expected = base64.b64encode(
            hmac.new(self._webhook_key.get_secret_value(), signed, hashlib.sha256).digest()
        ).decode()
        valid = False
        for entry in signatures.split():
            version, _, signature = entry.partition(",")
            if version == "v1" and hmac.compare_digest(signature.encode(), expected.encode()):
                valid = True  # keep comparing: do not leak which entry matched by timing
        if not valid:
            raise WebhookRejected("The Runa webhook signature does not match.")
