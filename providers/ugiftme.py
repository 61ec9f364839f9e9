"""UGiftMe (ugift.me) business API adapter.

Endpoints used (all under ``/api/v1/business``, authenticated with the ``X-API-Key`` header):

* ``GET /products`` — the catalog (see the assumptions: this path is not in the docs we read).
* ``POST /orders`` with an ``Idempotency-Key`` header — ``201`` is a finished order (synchronous
  mode, or an idempotent replay); ``202`` is ``{orderRequestId, status: "queued"}`` (async mode).
* ``GET /orders/order-requests/{id}`` — poll a queued request: ``queued`` → ``processing`` →
  ``succeeded`` (``result`` is the order) | ``failed`` (``error`` says why).
* ``GET /orders/{orderId}`` — one order, with its voucher.

Order ids handed to the bot
---------------------------
The bot stores ``OrderResult.provider_order_id`` and later passes it to :meth:`get_order`, so it
says which kind of UGiftMe id it is:

* ``order:<_id>`` — an order (a ``201`` answer, or a queued request that has succeeded);
  looked up with ``GET /orders/{_id}``.
* ``request:<orderRequestId>`` — a queued order request (a ``202`` answer); looked up with
  ``GET /orders/order-requests/{id}``. Once it succeeds, :meth:`get_order` answers with the
  ``order:`` id of the order it created.

An id without either prefix is taken to be an order id.

Product ids
-----------
An order names both ``productCode`` and ``merchant``, but the bot only keeps a product id, so a
product id is ``<productCode>|<merchant name>`` (e.g. ``AMAZON_UK_STD|Amazon UK``). The order
body is therefore built from the stored request alone and is identical on every attempt, even
if the merchant is renamed in the catalog meanwhile. Products whose code contains ``|`` are
skipped.

Settings
--------
``UGIFTME_API_KEY`` (required) and ``UGIFTME_API_URL`` (default ``https://api.ugift.me``; the
sandbox is ``https://api-stage.ugift.me``), from the environment or ``.env``.

Failures (what the bot sees)
----------------------------
* 400 → :class:`InvalidProduct` when the vendor's message is about the product, merchant,
  currency or value, else :class:`OrderDeclined`; the vendor's ``error``/``message`` is quoted.
* 400 saying the idempotency key was reused with a different payload → :class:`OutcomeUnknown`:
  the key is unique to one reward request, so a conflict means an earlier attempt of *this*
  request reached UGiftMe with other details and a card may have been bought.
* 401 / 403 → :class:`AuthenticationFailed` (403 hints at the key's IP allow-list).
* 402 → :class:`InsufficientFunds`, naming the amount needed (the available balance is only
  logged: the message is posted in the request's channel thread).
* 404 on create → :class:`InvalidProduct`.
* 409 (undocumented) → retryable: taken to be an in-flight duplicate of an earlier attempt.
* 429 → :class:`RateLimited`, waiting ``Retry-After``, else ``RateLimit-Reset`` /
  ``X-RateLimit-Reset`` (seconds, an HTTP date or a Unix time), capped at 60 s.
* 5xx, timeouts, dropped connections, unreadable answers → retried with the same key and body.
* Any refusal on :meth:`get_order` (401, 403, 404 ...), or when re-reading an order a ``201``
  just created → :class:`OutcomeUnknown`: the order was accepted, so a refusal to report on it
  is not a refusal of the order; a human must look.
* An order request that ends ``failed`` → ``OrderState.FAILED`` with UGiftMe's ``error`` text.
* A refusal of a retried create after an attempt whose answer was lost (timeout, dropped
  connection, 5xx) → :class:`OutcomeUnknown`, since the lost attempt may have bought the card.
  Every attempt is recorded in the bot's database before it is sent (:class:`SendLog`), so this
  holds after a restart and in another process too.

Assumptions (the docs are silent or contradict each other)
----------------------------------------------------------
* **Catalog: unconfirmed.** No product-list page was readable. We call ``GET /products?page=&
  limit=100`` and accept a bare list or an object holding the list in ``products``, ``data``,
  ``items`` or ``results``, following ``totalPages`` (top level or under ``pagination``; without
  it, while pages come back full with new products), at most 50 pages. A product needs
  ``productCode``, ``currency`` and ``merchant`` (a name or an object with ``name``); its face
  values come from ``denominations`` / ``values`` / ``fixedValues`` / ``availableValues`` (a
  list), or ``minValue``/``maxValue`` (``minimumValue``/``maximumValue``). Products without
  readable face values, in a code that is not an ISO 4217 currency, or with ``isActive: false``
  are skipped and logged, never guessed.
  **Verify against the sandbox (https://api-stage.ugift.me) before enabling in production.**
* ``valuePurchased`` is a JSON number: the shared ``_request`` writes the ``Decimal`` as that
  exact number.
* ``recipientName``, ``recipientEmail`` (when Slack shows one) and ``giftMessage`` are sent.
  The docs do not say whether UGiftMe emails the card to ``recipientEmail``; the bot still
  delivers it privately in Slack (``delivered_by_provider`` is False).
* Our ``reference`` is not sent: ``CreateOrderRequest`` has no such field.
* An order is complete when it carries ``merchant.voucherCode`` or ``merchant.redemptionUrl``
  (a PIN is read from ``merchant.pin`` / ``voucherPin`` / ``pinCode`` if ever present; a
  redemption link that is not http(s) is dropped). Order statuses other than ``"active"`` are
  undocumented: ``pending``/``queued``/``processing`` are taken as pending; ``failed``,
  ``cancelled``/``canceled``, ``refunded``, ``rejected``, ``declined``, ``void``/``voided`` as
  failed; an order with no voucher in any other status → :class:`OutcomeUnknown`. A ``201``
  or a succeeded request without a voucher is first re-read with ``GET /orders/{id}``.
* Order-request statuses: ``queued``/``processing`` (and ``pending``/``in_progress``) are
  pending; the failure text is read from ``error`` (name unconfirmed), else ``message`` /
  ``reason``. Any other status → :class:`OutcomeUnknown` rather than polling forever. The
  order id of a succeeded request is ``result._id`` or ``result.orderId`` (the webhook shape).
* A ``202`` replay (async mode) returns the same ``orderRequestId``; a ``201`` replay the same
  order. Either is handled.
* ``charged`` is left unset: no order field says what the wallet was debited (the
  ``wallet.updated`` webhook shows a discount, e.g. 49.5 for a 50 card).
* A ``429`` is taken to mean the request was not processed (it does not make a lost attempt).
* Webhooks are not used (they need a subscription secret the issue does not configure); the
  bot polls it (:meth:`Provider.next_poll`).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any, ClassVar, Self
from urllib.parse import quote, urlsplit

import httpx
from pydantic import (
    AliasChoices,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.domain import Money, is_currency
from providers.base import (
    LONGEST_POLL,
    OrderRequest,
    OrderResult,
    OrderState,
    Product,
    Redemption,
    SendLog,
)
from providers.errors import (
    AuthenticationFailed,
    InsufficientFunds,
    InvalidProduct,
    OrderDeclined,
    OrderRefused,
    OutcomeUnknown,
    ProviderError,
    ProviderUnavailable,
)
from providers.http import HttpProvider, RetryPolicy, find_list
from providers.settings import ApiUrl, ProviderSettings, Secret, read_settings
from providers.vendor_json import VendorModel

log = logging.getLogger(__name__)

PRODUCTION_URL = "https://api.ugift.me"
SANDBOX_URL = "https://api-stage.ugift.me"
_API = "/api/v1/business"
_LABEL = "UGiftMe"
ORDER_PREFIX = "order:"
REQUEST_PREFIX = "request:"
PRODUCT_SEPARATOR = "|"

_PAGE_SIZE = 100
_MAX_PAGES = 50

_REQUEST_PENDING = frozenset({"queued", "processing", "pending", "in_progress"})
_ORDER_PENDING = frozenset({"pending", "queued", "processing"})
_ORDER_FAILED = frozenset(
    {"failed", "cancelled", "canceled", "refunded", "rejected", "declined", "void", "voided"}
)
# Words in a 400 answer that make it a refusal of the product or amount, not of the order.
_PRODUCT_WORDS = ("product", "merchant", "currency", "value", "amount", "denomination")


# -- settings -----------------------------------------------------------------------------------


class _Settings(ProviderSettings):
    api_key: Secret = Field(validation_alias="UGIFTME_API_KEY")
    api_url: ApiUrl = Field(default=PRODUCTION_URL, validation_alias="UGIFTME_API_URL")


# -- vendor JSON (private) ----------------------------------------------------------------------


class _Vendor(VendorModel):
    # The documented camelCase names are aliases; answers that already use the field names
    # (``order_id`` for ``orderId``) are read too.
    model_config = ConfigDict(populate_by_name=True)


class _ErrorBody(_Vendor):
    error: str | None = None
    message: str | None = None
    reason: str | None = None
    required: Decimal | None = None
    available: Decimal | None = None
    currency: str | None = None

    @field_validator("error", "message", "reason", mode="before")
    @classmethod
    def _text_only(cls, value: Any) -> Any:
        return value if isinstance(value, str) else None

    @field_validator("required", "available", mode="before")
    @classmethod
    def _number_only(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return None
        return value if isinstance(value, int | float | str | Decimal) else None

    @field_validator("currency", mode="before")
    @classmethod
    def _currency_only(cls, value: Any) -> Any:
        return value if isinstance(value, str) else None


class _Merchant(_Vendor):
    name: str | None = None
    voucher_code: SecretStr | None = Field(default=None, alias="voucherCode")
    redemption_url: SecretStr | None = Field(default=None, alias="redemptionUrl")
    pin: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("pin", "voucherPin", "pinCode")
    )


class _Order(_Vendor):
    id: str = Field(alias="_id")
    status: str | None = None
    merchant: _Merchant | str | None = None
    currency: str | None = None
    value_purchased: Decimal | None = Field(default=None, alias="valuePurchased")


class _Queued(_Vendor):
    order_request_id: str = Field(alias="orderRequestId")
    status: str | None = None


class _RequestResult(_Vendor):
    """``result`` of a succeeded order request: the order, or (webhook shape) ``{orderId}``."""

    id: str | None = Field(default=None, alias="_id")
    order_id: str | None = Field(default=None, alias="orderId")
    status: str | None = None
    merchant: _Merchant | str | None = None


class _OrderRequestStatus(_Vendor):
    status: str
    result: _RequestResult | None = None
    error: str | None = None
    message: str | None = None
    reason: str | None = None

    @field_validator("result", mode="before")
    @classmethod
    def _lenient_result(cls, value: Any) -> Any:
        # "may be an arbitrary object while workers evolve": keep what we can read, drop the rest.
        if not isinstance(value, dict):
            return None
        try:
            return _RequestResult.model_validate(value)
        except ValidationError:
            return None

    @field_validator("error", "message", "reason", mode="before")
    @classmethod
    def _text_only(cls, value: Any) -> Any:
        return value if isinstance(value, str) else None


class _VendorProduct(_Vendor):
    product_code: str = Field(alias="productCode")
    merchant: str | _Merchant | None = None
    name: str | None = Field(default=None, validation_alias=AliasChoices("name", "productName"))
    currency: str
    denominations: list[Decimal] | None = Field(
        default=None,
        validation_alias=AliasChoices("denominations", "values", "fixedValues", "availableValues"),
    )
    min_value: Decimal | None = Field(
        default=None, validation_alias=AliasChoices("minValue", "minimumValue")
    )
    max_value: Decimal | None = Field(
        default=None, validation_alias=AliasChoices("maxValue", "maximumValue")
    )
    is_active: bool | None = Field(default=None, alias="isActive")


class _ProductPage(_Vendor):
    items: list[Any] = Field(default_factory=list)
    total_pages: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {"items": value}
        if not isinstance(value, dict):
            return value
        items = find_list(value, ("products", "data", "items", "results")) or []
        pagination = value.get("pagination")
        pages = value.get("totalPages")
        if pages is None and isinstance(pagination, dict):
            pages = pagination.get("totalPages")
        return {"items": items, "total_pages": pages if isinstance(pages, int) else None}


# -- the adapter --------------------------------------------------------------------------------


class UGiftMeProvider(HttpProvider):
    """See the module docstring for the documented behaviour and the assumptions."""

    name: ClassVar[str] = "ugiftme"
    api_key_header: ClassVar[str | None] = "X-API-Key"
    retry_after_headers: ClassVar[tuple[str, ...]] = (
        "Retry-After",
        "RateLimit-Reset",
        "X-RateLimit-Reset",
    )
    max_retry_after: ClassVar[float] = 60.0

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_key: SecretStr | str,
        base_url: str = PRODUCTION_URL,
        *,
        retry: RetryPolicy | None = None,
        poll_interval: float = LONGEST_POLL,
    ) -> None:
        super().__init__(http, base_url, retry=retry, api_key=api_key)
        self.poll_interval = poll_interval

    @classmethod
    def from_env(cls, http: httpx.AsyncClient) -> Self:
        """``UGIFTME_API_KEY`` (required) and ``UGIFTME_API_URL`` (default: production)."""
        settings = read_settings(_Settings)
        return cls(http, settings.api_key, settings.api_url)

    # -- HttpProvider hooks -------------------------------------------------------------------

    def _refusal_for(self, response: httpx.Response) -> ProviderError:
        body = self._error_body(response, _ErrorBody)
        status = response.status_code
        said = self._said(body, status)
        if status == 400:
            if "idempot" in said.lower():
                return OutcomeUnknown(
                    f"{_LABEL} says this order's idempotency key was already used with other "
                    f"details ({said}). An earlier attempt may have bought the card: check the "
                    f"{_LABEL} order history before ordering again."
                )
            if any(word in said.lower() for word in _PRODUCT_WORDS):
                return InvalidProduct(f"{_LABEL} does not accept this card or amount: {said}")
            return OrderDeclined(f"{_LABEL} declined the order: {said}")
        if status == 401:
            return AuthenticationFailed(
                f"{_LABEL} rejected our API key ({said}). Check UGIFTME_API_KEY."
            )
        if status == 402:
            return self._insufficient_funds(body)
        if status == 403:
            return AuthenticationFailed(
                f"{_LABEL} refused access ({said}). If the API key has an IP allow-list, this "
                "server's address must be on it."
            )
        if status == 404:
            return InvalidProduct(f"{_LABEL} could not find it: {said}")
        if status == 409:
            return ProviderUnavailable(
                f"{_LABEL} is still working on an earlier attempt of this order (HTTP 409)."
            )
        return OrderDeclined(f"{_LABEL} refused the request: {said}")

    # -- catalog ------------------------------------------------------------------------------

    async def list_products(self) -> list[Product]:
        products: dict[str, Product] = {}
        for page in range(1, _MAX_PAGES + 1):
            response = await self._request(
                "GET", f"{_API}/products", params={"page": str(page), "limit": str(_PAGE_SIZE)}
            )
            listing = self._parse(response, _ProductPage)
            before = len(products)
            for raw in listing.items:
                product = self._product(raw)
                if product is not None:
                    products.setdefault(product.product_id, product)
            if listing.total_pages is not None:
                if page >= listing.total_pages:
                    break
            # No page count: go on while pages come back full and bring new products.
            elif len(listing.items) < _PAGE_SIZE or len(products) == before:
                break
        return list(products.values())

    def _product(self, raw: Any) -> Product | None:
        code = raw.get("productCode") if isinstance(raw, dict) else None
        try:
            vendor = _VendorProduct.model_validate(raw)
        except ValidationError:
            log.warning("%s: skipped an unreadable catalog entry (productCode %r)", _LABEL, code)
            return None
        merchant = (
            vendor.merchant.name if isinstance(vendor.merchant, _Merchant) else vendor.merchant
        )
        currency = vendor.currency.strip().upper()
        problem = None
        if vendor.is_active is False:
            problem = "inactive"
        elif not merchant or not vendor.product_code.strip():
            problem = "no merchant or product code"
        elif PRODUCT_SEPARATOR in vendor.product_code:
            problem = f"product code contains {PRODUCT_SEPARATOR!r}"
        elif not is_currency(currency):
            problem = "currency is not an ISO 4217 currency"
        if problem is not None:
            log.warning("%s: skipped product %r (%s)", _LABEL, vendor.product_code, problem)
            return None
        assert merchant is not None
        try:
            return Product.from_face_values(
                provider=self.name,
                product_id=f"{vendor.product_code}{PRODUCT_SEPARATOR}{merchant}",
                name=(vendor.name or "").strip() or merchant,
                currency=currency,
                fixed=vendor.denominations,
                min_value=vendor.min_value,
                max_value=vendor.max_value,
            )
        except ValueError as exc:
            log.warning("%s: skipped product %r (%s)", _LABEL, vendor.product_code, exc)
            return None

    # -- orders -------------------------------------------------------------------------------

    async def place_order(self, order: OrderRequest, sends: SendLog | None = None) -> OrderResult:
        response = await self._request(
            "POST",
            f"{_API}/orders",
            json_body=self._order_body(order),
            headers={"Idempotency-Key": order.idempotency_key},
            sends=sends or SendLog(),
        )
        try:
            return await self._created(response)
        except OrderRefused as refusal:  # reading back an order UGiftMe accepted
            raise OutcomeUnknown(
                f"{_LABEL} accepted the order but then answered: {refusal.message} "
                f"Check the {_LABEL} order history before ordering again."
            ) from None

    async def get_order(self, provider_order_id: str) -> OrderResult:
        try:
            if provider_order_id.startswith(REQUEST_PREFIX):
                return await self._poll_request(provider_order_id)
            order = await self._fetch_order(provider_order_id.removeprefix(ORDER_PREFIX))
            return self._result(order.id, order.status, order.merchant)
        except OrderRefused as refusal:
            raise OutcomeUnknown(
                f"{_LABEL} would not report on order {provider_order_id}: {refusal.message} "
                f"The card may have been bought; check the {_LABEL} dashboard."
            ) from None

    async def _created(self, response: httpx.Response) -> OrderResult:
        """The result of a successful create answer (202 queued, or 201 order)."""
        if response.status_code == 202:
            queued = self._parse(response, _Queued)
            return OrderResult(
                provider_order_id=REQUEST_PREFIX + queued.order_request_id,
                state=OrderState.PENDING,
            )
        if response.status_code not in (200, 201):
            raise OutcomeUnknown(
                f"{_LABEL} answered the order with HTTP {response.status_code}, which its docs "
                f"do not describe. Check the {_LABEL} order history before ordering again."
            )
        order = self._parse(response, _Order)
        if _redemption(order.merchant) is None:  # e.g. a list-shaped answer: read it whole
            order = await self._fetch_order(order.id)
        return self._result(order.id, order.status, order.merchant)

    def _order_body(self, order: OrderRequest) -> dict[str, Any]:
        code, separator, merchant = order.product_id.partition(PRODUCT_SEPARATOR)
        if not separator or not code or not merchant:
            raise InvalidProduct(f"{order.product_id!r} is not a {_LABEL} product of this bot.")
        body: dict[str, Any] = {
            "productCode": code,
            "merchant": merchant,
            "currency": order.face_value.currency,
            "valuePurchased": order.face_value.amount,
        }
        if order.recipient.email:
            body["recipientEmail"] = order.recipient.email
        if order.recipient.name:
            body["recipientName"] = order.recipient.name
        if order.message:
            body["giftMessage"] = order.message
        return body

    async def _poll_request(self, provider_order_id: str) -> OrderResult:
        request_id = provider_order_id.removeprefix(REQUEST_PREFIX)
        response = await self._request(
            "GET", f"{_API}/orders/order-requests/{quote(request_id, safe='')}"
        )
        polled = self._parse(response, _OrderRequestStatus)
        status = polled.status.strip().lower()
        if status in _REQUEST_PENDING:
            return OrderResult(provider_order_id=provider_order_id, state=OrderState.PENDING)
        if status == "failed":
            said = self._vendor_text(polled.error or polled.message or polled.reason or "")
            return OrderResult(
                provider_order_id=provider_order_id,
                state=OrderState.FAILED,
                failure_reason=f"{_LABEL} could not issue the card"
                + (f": {said}" if said else "."),
            )
        if status != "succeeded":
            raise OutcomeUnknown(
                f"{_LABEL} order request {self._vendor_text(request_id)} is in status "
                f"{self._vendor_text(status)!r}, which its docs do not describe. Check it in the "
                f"{_LABEL} dashboard."
            )
        result = polled.result
        order_id = None if result is None else (result.id or result.order_id)
        if result is None or not order_id:
            raise OutcomeUnknown(
                f"{_LABEL} says order request {request_id} succeeded but not which order it "
                f"created. Find it in the {_LABEL} order history."
            )
        if result.id and _redemption(result.merchant) is not None:
            return self._result(result.id, result.status, result.merchant)
        order = await self._fetch_order(order_id)
        return self._result(order.id, order.status, order.merchant)

    async def _fetch_order(self, order_id: str) -> _Order:
        response = await self._request("GET", f"{_API}/orders/{quote(order_id, safe='')}")
        return self._parse(response, _Order)

    def _result(
        self, order_id: str, status: str | None, merchant: _Merchant | str | None
    ) -> OrderResult:
        provider_order_id = ORDER_PREFIX + order_id
        state = self._vendor_text(status or "").lower()
        if state in _ORDER_FAILED:
            return OrderResult(
                provider_order_id=provider_order_id,
                state=OrderState.FAILED,
                failure_reason=f"{_LABEL} reports the order as {state}.",
            )
        redemption = _redemption(merchant)
        if redemption is not None:
            return OrderResult(
                provider_order_id=provider_order_id,
                state=OrderState.COMPLETED,
                redemption=redemption,
            )
        if state in _ORDER_PENDING:
            return OrderResult(provider_order_id=provider_order_id, state=OrderState.PENDING)
        raise OutcomeUnknown(
            f"{_LABEL} order {self._vendor_text(order_id)} is in status {state or 'none'!r} "
            f"but shows no voucher. Check it in the {_LABEL} dashboard."
        )

    # -- errors -------------------------------------------------------------------------------

    def _said(self, body: _ErrorBody, status: int) -> str:
        """The vendor's own words, fit for Slack (see ``vendor_text``), without our key."""
        parts = [p for p in (body.error, body.message, body.reason) if p and p.strip()]
        said = dict.fromkeys(self._vendor_text(p) for p in parts)
        return ": ".join(said) or f"HTTP {status}"

    def _insufficient_funds(self, body: _ErrorBody) -> InsufficientFunds:
        needed = ""
        currency = (body.currency or "").strip().upper()
        if body.required is not None and body.required.is_finite() and len(currency) == 3:
            try:
                needed = f" ({Money(amount=body.required, currency=currency)} needed)"
            except ValidationError:
                needed = ""
        log.warning(
            "%s: insufficient funds: required %s, available %s %s",
            _LABEL,
            body.required,
            body.available,
            body.currency,
        )
        return InsufficientFunds(
            f"The {_LABEL} wallet cannot cover this card{needed}. Top up the {_LABEL} wallet, "
            "then request the reward again."
        )


# -- helpers ------------------------------------------------------------------------------------


def _redemption(merchant: _Merchant | str | None) -> Redemption | None:
    if not isinstance(merchant, _Merchant):
        return None
    code = _secret(merchant.voucher_code)
    pin = _secret(merchant.pin)
    url = _secret(merchant.redemption_url)
    if url is not None and urlsplit(url.get_secret_value()).scheme not in ("http", "https"):
        url = None
    if code is None and url is None:
        return None
    return Redemption(url=url, code=code, pin=pin)


def _secret(value: SecretStr | None) -> SecretStr | None:
    if value is None:
        return None
    text = value.get_secret_value().strip()
    return SecretStr(text) if text else None


__all__ = ["PRODUCTION_URL", "SANDBOX_URL", "UGiftMeProvider"]
