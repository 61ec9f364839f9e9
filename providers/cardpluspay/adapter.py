"""The CardPlusPay adapter: the ordering flow and its safety checks (see the package docstring
for the documented behaviour and the assumptions)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Self

import httpx
from pydantic import Field, SecretStr, ValidationError

from bot.domain import Money
from providers.base import (
    LONGEST_POLL,
    OrderRequest,
    OrderResult,
    OrderState,
    Product,
    SendLog,
)
from providers.cardpluspay._catalog import (
    _PER_PAGE,
    _catalog_shape,
    _check_listed,
    _last_page,
    _product,
)
from providers.cardpluspay._errors import (
    _DISPLAY,
    _VENDOR_TEXT_LIMIT,
    _check_by_hand,
    _details_changed,
    _envelope_message,
    _refusal,
    _said,
    _ServerError,
)
from providers.cardpluspay._identity import _Identity, _Scan, _time_range
from providers.cardpluspay._json import (
    _CatalogItem,
    _CatalogPage,
    _Check,
    _Envelope,
    _Order,
    _OrderList,
)
from providers.cardpluspay._orders import _charged_of, _order_body, _result
from providers.errors import (
    InvalidProduct,
    OrderRefused,
    OutcomeUnknown,
    OutOfStock,
    ProviderError,
    ProviderUnavailable,
)
from providers.http import HttpProvider, ModelT, RetryPolicy, encode_json
from providers.settings import ApiUrl, ProviderSettings, Secret, read_settings

log = logging.getLogger(__name__)

PRODUCTION_URL = "https://api.cardpluspay.com/v1"
_MAX_CATALOG_PAGES = 50
_DEFAULT_RATE_LIMIT_WAIT = 5.0


class _Settings(ProviderSettings):
    api_key: Secret = Field(alias="CARDPLUSPAY_API_KEY")
    api_url: ApiUrl = Field(default=PRODUCTION_URL, alias="CARDPLUSPAY_API_URL")


class CardPlusPayProvider(HttpProvider):
    """See the package docstring for the documented behaviour and the assumptions."""

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
        poll_interval: float = LONGEST_POLL,
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
        return _refusal(response.status_code, self._message(response))

    def _message(self, response: httpx.Response) -> str:
        """The envelope's ``message``, made safe and short enough to show in Slack."""
        return self._vendor_text(_envelope_message(response), limit=_VENDOR_TEXT_LIMIT)

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
                product = _product(self.name, raw)
                if product is not None:
                    products.setdefault(product.product_id, product)
            if _last_page(listing.pagination, len(listing.items)):
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

    # -- ordering ----------------------------------------------------------------------------

    async def place_order(self, order: OrderRequest, sends: SendLog | None = None) -> OrderResult:
        sends = sends or SendLog()
        body = _order_body(order)
        fingerprint = hashlib.sha256(encode_json(body)).hexdigest()
        async with self._lock:
            if sends.record.fingerprint not in (None, fingerprint):
                # Checked before any lookup: a reconcile would search for the wrong card.
                raise _details_changed()
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
                "POST", "/orders", json_body=body, retry=False, sends=sends
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
            raise _refusal(400, self._message(response))
        self._identities.setdefault(created.order_id, _Identity.of(created))
        return _result(created, order, self._charged_for)

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
                _check_by_hand(f"its order list is unreadable: {exc.message}")
            ) from None
        if scan.complete and len(scan.matches) == 1 and not scan.unresolved:
            ours = scan.matches[0]
            log.info("cardpluspay: found %s for %s by lookup", ours.label, order.reference)
            return await self._fetch(ours.order_id)
        if scan.matches or scan.unresolved or not scan.complete:
            raise OutcomeUnknown(_check_by_hand(scan.describe()))
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
            _check_by_hand("no order appeared, but CardPlusPay never answered the purchase")
        )

    async def _check_product(self, order: OrderRequest) -> None:
        """Re-read the item: never buy a card whose face value is not the approved one."""
        try:
            listing = await self._catalog_page({"item_id": order.product_id}, 1)
        except InvalidProduct:  # 404: unknown item code
            listing = None
        items = [self._validate(_CatalogItem, i) for i in (listing.items if listing else [])]
        _check_listed(items, order)

    async def _check_stock(self, order: OrderRequest) -> None:
        response = await self._request(
            "POST", "/orders/check", json_body={"item_id": order.product_id, "quantity": 1}
        )
        envelope = self._envelope(response)
        check = self._validate(_Check, envelope.data if isinstance(envelope.data, dict) else {})
        if not envelope.success or not check.in_stock:
            raise OutOfStock(
                f"This card is out of stock at CardPlusPay{_said(self._message(response))}."
            )

    # -- reading orders ----------------------------------------------------------------------

    async def _fetch(self, order_id: int) -> OrderResult:
        detail = await self._detail(order_id, placed=True)
        assert detail is not None
        result = _result(detail, None, self._charged_for)
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
        scan = _Scan(order, since, attributed)
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
                if not scan.add(await self._identity(entry)):
                    return scan
            if _last_page(pagination, len(listing.orders)):
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

    def _charged_for(self, placed: _Order) -> Money | None:
        """What the order cost, remembered: a later reading may no longer show it."""
        money = _charged_of(placed)
        if money is not None:
            self._charged[placed.order_id] = money
            return money
        return self._charged.get(placed.order_id)
