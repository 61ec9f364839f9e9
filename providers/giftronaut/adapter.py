"""The Giftronaut adapter: OAuth tokens, the hooks and the ordering flow (see the package
docstring for the documented behaviour and the assumptions)."""

from __future__ import annotations

import asyncio
import contextvars
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import ClassVar, Self
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr

from providers.base import (
    LONGEST_POLL,
    OrderRequest,
    OrderResult,
    Product,
    SendLog,
    SharedOrder,
)
from providers.errors import (
    InvalidProduct,
    OrderDeclined,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from providers.giftronaut._errors import OrderNotCancelable, _refusal, _token_refusal
from providers.giftronaut._json import _Order, _Resent, _Token
from providers.giftronaut._orders import (
    ScheduledSend,
    _order_body,
    _product,
    _result,
    _split_product_id,
    giftronaut_key,
)
from providers.http import HttpProvider, RetryPolicy, find_list
from providers.settings import ApiUrl, ProviderSettings, Secret, read_settings

PRODUCTION_URL = "https://api.giftronaut.com"
DEFAULT_SCOPE = "catalog.read orders.read orders.write orders.cancel"
# Renew the access token this many seconds before Giftronaut says it expires.
TOKEN_EXPIRY_MARGIN = 60.0
# Production's rate limit (sandbox: 60 a minute). Both environments share the URL, and the
# credentials pick one, so sandbox credentials need GIFTRONAUT_REQUESTS_PER_MINUTE=60.
PRODUCTION_REQUESTS_PER_MINUTE = 300
# The idempotency guide's window; replaying a key after it would place a second order.
REPLAY_WINDOW = 24 * 3600.0
# Replays of a key first sent longer ago than this are refused (OutcomeUnknown).
SAFE_REPLAY_AGE = REPLAY_WINDOW - 3600.0

_TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a path, not a secret


class _Settings(ProviderSettings):
    client_id: str = Field(alias="GIFTRONAUT_CLIENT_ID", min_length=1)
    client_secret: Secret = Field(alias="GIFTRONAUT_CLIENT_SECRET")
    api_url: ApiUrl = Field(default=PRODUCTION_URL, alias="GIFTRONAUT_API_URL")
    scope: str = Field(default=DEFAULT_SCOPE, alias="GIFTRONAUT_SCOPE", min_length=1)
    sender_name: str = Field(
        default="Rewardbot", alias="GIFTRONAUT_SENDER_NAME", min_length=1, max_length=100
    )
    requests_per_minute: int = Field(
        default=PRODUCTION_REQUESTS_PER_MINUTE, alias="GIFTRONAUT_REQUESTS_PER_MINUTE", gt=0
    )


@dataclass
class _CachedToken:
    token: SecretStr
    renew_at: float


# The token a request in this task authenticated with, so a 401 drops only that token (a
# concurrent call may already have minted a fresh one).
_TOKEN_USED: contextvars.ContextVar[_CachedToken | None] = contextvars.ContextVar(
    "giftronaut_token_used", default=None
)


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
        poll_interval: float = LONGEST_POLL,
        clock: Callable[[], float] = time.monotonic,
        requests_per_minute: int = PRODUCTION_REQUESTS_PER_MINUTE,
    ) -> None:
        super().__init__(http, base_url, retry=retry)
        self.requests_per_minute = requests_per_minute
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

    def credentials(self) -> tuple[SecretStr, ...]:
        return (*super().credentials(), self._client_secret)

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
            requests_per_minute=settings.requests_per_minute,
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
            product = _product(self.name, kind, entry)
            if product is not None:
                products.append(product)
        return products

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
        kind, vendor_product_id = _split_product_id(order.product_id)
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
            json_body=_order_body(
                order,
                key,
                vendor_product_id,
                schedule,
                sender_name=self._sender_name,
                refund_option=self._refund_option,
            ),
            headers={"X-Idempotency-Key": key, "X-Request-Id": str(uuid.uuid4())},
            sends=sends or SendLog(),
        )
        return _result(self._parse_order(response))

    async def get_order(self, provider_order_id: str) -> OrderResult:
        return _result(await self._fetch_order(provider_order_id))

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
    def _order_path(provider_order_id: str) -> str:
        return f"/api/v1/orders/{quote(provider_order_id, safe='')}"

    async def _fetch_order(self, provider_order_id: str) -> _Order:
        response = await self._request("GET", self._order_path(provider_order_id))
        return self._parse_order(response)

    def _parse_order(self, response: httpx.Response) -> _Order:
        return self._parse(response, _Order)

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
                    raise _token_refusal(self.name, self._scope, response)
            if attempt >= self._retry.attempts:
                raise error
            await asyncio.sleep(
                error.retry_after if isinstance(error, RateLimited) else self._retry.delay(attempt)
            )

    # -- error mapping ---------------------------------------------------------------------

    def _refusal_for(self, response: httpx.Response) -> ProviderError:
        return _refusal(self.name, self._scope, response)
