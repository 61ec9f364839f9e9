"""The Runa adapter: the hooks and the ordering flow (see the package docstring for the
documented behaviour and the assumptions)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal, Self
from urllib.parse import quote

import httpx
from pydantic import Field, SecretBytes, SecretStr, field_validator

from bot.domain import CurrencyCode
from providers.base import (
    LONGEST_POLL,
    OrderRequest,
    OrderResult,
    Product,
    SendLog,
    SharedOrder,
    WebhookNotice,
)
from providers.errors import (
    AuthenticationFailed,
    OrderDeclined,
    OrderRefused,
    OutcomeUnknown,
    ProviderError,
    RetryableProviderError,
    WebhookRejected,
)
from providers.http import HttpProvider, RetryPolicy
from providers.runa._errors import (
    _REFUSALS,
    _WITH_VENDOR_DETAIL,
    _RunaServerError,
    _StillProcessing,
    _validation_refusal,
)
from providers.runa._json import API_VERSION, _Catalog, _Error, _Order, _OrderPage
from providers.runa._orders import _order_body, _product, _result
from providers.runa._webhooks import _notice, _verify_signature, _webhook_key
from providers.settings import ApiUrl, BlankIsUnset, ProviderSettings, Secret, read_settings

log = logging.getLogger(__name__)

PRODUCTION_URL = "https://api.runa.io/v2"
_MAX_CATALOG_PAGES = 50
_CATALOG_PAGE_SIZE = "500"
_LOOKUP_PAGE_SIZE = "100"


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


# webhooks.mdx retries a failed delivery "Immediately", then after "5 seconds", then minutes
# apart: a completion not heard of this long after the order was probably missed.
_WEBHOOK_MISSED_AFTER = 10.0


class RunaProvider(HttpProvider):
    """Runa's API ``2024-02-05``; see the module docstring for the documented behaviour."""

    name: ClassVar[str] = "runa"
    api_key_header: ClassVar[str | None] = "X-Api-Key"
    # ``NewOrderDetails.items``: "The maximum number of items per order is 200."
    max_recipients_per_order: ClassVar[int] = 200
    # 300 orders a minute, the limit the issue quotes for Runa (the OpenAPI file documents only
    # the 429 ``RateExceeded`` answer, and no limit on other calls: a 429 on one still holds
    # every call off). Polls and catalog reads are not counted: kept for every call, polls
    # would crowd out the orders themselves.
    orders_per_minute: int | None = 300

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
        poll_interval: float = LONGEST_POLL,
        rate_limit_wait: float = 2.0,
        in_progress_wait: float = 2.0,
        lookup_pages: int = 5,
    ) -> None:
        super().__init__(
            http, base_url, retry=retry, rate_limit_wait=rate_limit_wait, api_key=api_key
        )
        self._webhook_secret = webhook_secret
        self._webhook_key = (
            None if webhook_secret is None else SecretBytes(_webhook_key(webhook_secret))
        )
        self._payment_currency = payment_currency
        self._execution_mode = execution_mode
        self.poll_interval = poll_interval
        if webhook_secret is not None:
            # The webhook says when an order completes; polling only covers one that never
            # came, so it starts after Runa's first retry of a failed delivery (webhooks.mdx).
            self.first_poll = min(_WEBHOOK_MISSED_AFTER, poll_interval)
        self._in_progress_wait = in_progress_wait
        self._lookup_pages = lookup_pages

    def __repr__(self) -> str:
        webhooks = "on" if self._webhook_key else "off"
        return f"RunaProvider(base_url={self._base_url!r}, webhooks={webhooks})"

    def credentials(self) -> tuple[SecretStr, ...]:
        secret = () if self._webhook_secret is None else (self._webhook_secret,)
        return (*super().credentials(), *secret)

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
            return _validation_refusal(response, self._vendor_text)
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
            products += [p for raw in page.catalog if (p := _product(self.name, raw)) is not None]
            after = page.pagination.cursors.after if page.pagination else None
            if not page.catalog or not after or after in seen:
                break
            seen.add(after)
        else:
            log.warning("runa catalog: stopped after %s pages", _MAX_CATALOG_PAGES)
        return products

    # -- orders ----------------------------------------------------------------------------

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
                json_body=_order_body(order, self._payment_currency),
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
        return _result(accepted, self._vendor_text)

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
                    return _result(full, self._vendor_text)
            after = page.pagination.cursors.after if page.pagination else None
            if not page.items or not after:
                break
        return None

    async def _fetch(self, provider_order_id: str) -> _Order:
        response = await self._request("GET", f"/order/{quote(provider_order_id, safe='')}")
        return self._parse(response, _Order)

    async def get_order(self, provider_order_id: str) -> OrderResult:
        try:
            return _result(await self._fetch(provider_order_id), self._vendor_text)
        except OrderRefused as refusal:
            raise OutcomeUnknown(
                f"Runa order {provider_order_id} was placed but its status cannot be read "
                f"({refusal.message}); check it in the Runa portal."
            ) from None

    # -- webhooks --------------------------------------------------------------------------

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookNotice | None:
        if self._webhook_key is None:
            raise WebhookRejected(
                "Runa webhooks are not configured (RUNA_WEBHOOK_SECRET is not set)."
            )
        _verify_signature(self._webhook_key.get_secret_value(), headers, body)
        return _notice(body)
