"""The shared steps of every HTTP provider adapter: build, send with retries, map errors, parse.

Vendor modules subclass :class:`HttpProvider` and fill in the hooks (auth headers, how a 4xx
body maps to the error taxonomy, where a 429 says to wait); they never call httpx directly.
The injected ``httpx.AsyncClient`` is the test seam: tests point it at a local fake server.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, ParamSpec, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from providers.base import CallObserver, CallPacer, Provider, SendLog, SendRecord
from providers.errors import (
    VENDOR_TEXT_LIMIT,
    AuthenticationFailed,
    OrderDeclined,
    OrderRefused,
    OutcomeUnknown,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    RetryableProviderError,
    vendor_text,
)

log = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)
P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
# A rate-limit header value this large is a Unix time (``X-RateLimit-Reset``), not seconds.
_EPOCH_THRESHOLD = 1_000_000_000


def encode_json(body: Any) -> bytes:
    """JSON with every ``Decimal`` written as an exact JSON number (``10.10`` → ``10.10``),
    never through a float: vendors want numbers, and money must not be rounded on the way."""
    # A fresh marker per call, so no string in the body (a user's message) can pose as one.
    marker = f"decimal-{secrets.token_hex(8)}:"

    def mark(value: object) -> str:
        if isinstance(value, Decimal) and value.is_finite():
            return f"{marker}{value:f}"
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    text = json.dumps(body, default=mark)
    return re.sub(f'"{marker}(-?[0-9.]+)"', r"\1", text).encode()


def wait_seconds(value: str, *, now: float | None = None) -> float | None:
    """The wait a rate-limit header asks for: seconds, an HTTP date, or a Unix time.

    ``None`` if the value is none of these. The result may be negative (a time passed).
    """
    now = time.time() if now is None else now
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            return parsedate_to_datetime(text).timestamp() - now
        except (TypeError, ValueError, IndexError):
            return None
    if not math.isfinite(seconds):
        return None
    return seconds - now if seconds > _EPOCH_THRESHOLD else seconds


def find_list(data: Any, keys: Iterable[str], *, depth: int = 0) -> list[Any] | None:
    """The list in a catalog-like answer: ``data`` itself if it is a list, else the first list
    under one of ``keys``, looking ``depth`` objects deeper if need be; ``None`` if none."""
    if isinstance(data, list):
        return data
    if not isinstance(data, dict):
        return None
    keys = tuple(keys)
    for key in keys:
        if isinstance(data.get(key), list):
            return list(data[key])
    for key in keys if depth > 0 else ():
        found = find_list(data.get(key), keys, depth=depth - 1)
        if found is not None:
            return found
    return None


class _NotSent(ProviderUnavailable):
    """The request never reached the provider (no connection): it placed nothing."""


class _NoAnswerInTime(ProviderUnavailable):
    """The request was sent, and no answer came before the timeout."""


# The :class:`Provider` method a call is made for: the ``operation`` its observer is told.
# Set by the methods themselves (see ``HttpProvider.__init_subclass__``), so a vendor's paths,
# which hold order ids, never become metric labels.
_OTHER = "other"
_OPERATION: ContextVar[str] = ContextVar("provider_operation", default=_OTHER)
_PLACING = ("place_order", "place_shared_order")  # counted against ``orders_per_minute``
_OPERATIONS = (
    "list_products",
    *_PLACING,
    "get_order",
    "cancel_order",
    "resend",
)


def _naming_its_calls(
    operation: str, method: Callable[P, Awaitable[T]]
) -> Callable[P, Awaitable[T]]:
    """``method``, with every call it makes reported as made for ``operation``, unless it
    runs inside another operation (Giftronaut's ``place_order`` is its
    ``place_shared_order``): calls are named after the operation the bot asked for."""

    @functools.wraps(method)
    async def named(*args: P.args, **kwargs: P.kwargs) -> T:
        if _OPERATION.get() != _OTHER:
            return await method(*args, **kwargs)
        token = _OPERATION.set(operation)
        try:
            return await method(*args, **kwargs)
        finally:
            _OPERATION.reset(token)

    return named


def _outcome(result: httpx.Response | ProviderError) -> str:
    """How one call went, as a metric label: ``ok`` or a kind of failure (a few fixed words)."""
    if isinstance(result, httpx.Response):
        if result.is_success:
            return "ok"
        if result.status_code == 429:
            return "rate_limited"
        return "server_error" if result.status_code >= 500 else "client_error"
    if isinstance(result, _NotSent):
        return "connection_error"
    return "timeout" if isinstance(result, _NoAnswerInTime) else "transport_error"


class RetryPolicy(BaseModel):
    """How often and how patiently a retryable failure is retried within one call."""

    model_config = ConfigDict(frozen=True)

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.base_delay * 2 ** (attempt - 1), self.max_delay))


class HttpProvider(Provider):
    """A provider reached over HTTP through one injected ``httpx.AsyncClient``."""

    # Where a 429 says how long to wait, in the order they are read (see ``_retry_after``).
    retry_after_headers: ClassVar[tuple[str, ...]] = ("Retry-After",)
    # The longest a 429 may make one call wait, whatever the vendor asks.
    max_retry_after: ClassVar[float] = 600.0
    # The header that carries ``api_key`` on every request, for vendors that use one.
    api_key_header: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _OPERATIONS:
            if name in vars(cls):
                setattr(cls, name, _naming_its_calls(name, vars(cls)[name]))

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        *,
        retry: RetryPolicy | None = None,
        rate_limit_wait: float | None = None,
        api_key: SecretStr | str | None = None,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._retry = retry or RetryPolicy()
        # The wait after a 429 that names none (default: the retry policy's first delay).
        self._rate_limit_wait = (
            self._retry.base_delay if rate_limit_wait is None else rate_limit_wait
        )
        self._api_key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        self._observer: CallObserver | None = None
        self._pacer: CallPacer | None = None

    def credentials(self) -> tuple[SecretStr, ...]:
        return () if self._api_key is None else (self._api_key,)

    def observe_calls(self, observer: CallObserver) -> None:
        self._observer = observer

    def pace_calls(self, pacer: CallPacer) -> None:
        self._pacer = pacer

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._base_url!r})"

    # -- hooks for vendor modules ---------------------------------------------------------

    async def _auth_headers(self) -> dict[str, str]:
        """Headers that authenticate a request: ``api_key`` in ``api_key_header``, if set."""
        if self.api_key_header is None or self._api_key is None:
            return {}
        return {self.api_key_header: self._api_key.get_secret_value()}

    async def _on_unauthorized(self) -> bool:
        """A 401 arrived: renew credentials and return True to retry once (OAuth tokens)."""
        return False

    def _refusal_for(self, response: httpx.Response) -> ProviderError:
        """Map a 4xx answer (other than 429) to the taxonomy. Never put secrets in messages."""
        if response.status_code in (401, 403):
            return AuthenticationFailed(f"{self.name} rejected our credentials.")
        return OrderDeclined(f"{self.name} refused the request (HTTP {response.status_code}).")

    def _retry_after(self, response: httpx.Response) -> float:
        """Seconds a 429 asks us to wait: the first readable ``retry_after_headers`` value
        (seconds, an HTTP date or a Unix time), between 0 and ``max_retry_after``; else
        ``rate_limit_wait``."""
        for header in self.retry_after_headers:
            seconds = wait_seconds(response.headers.get(header, ""))
            if seconds is not None:
                return min(max(seconds, 0.0), self.max_retry_after)
        return self._rate_limit_wait

    # -- the shared steps ----------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = True,
        sends: SendLog | None = None,
    ) -> httpx.Response:
        """Send one request, retrying what may be retried with the *identical* body.

        ``retry=False`` is for calls that are unsafe to repeat (an order without an
        idempotency key): the first retryable failure is raised to the caller.

        ``sends`` makes this a request that may place an order (see :class:`SendLog`): each
        attempt is recorded before it is sent, an attempt whose outcome is unknown is kept
        unsettled, and once an attempt's answer was lost, a refusal of a later one cannot
        say that nothing was bought: it is raised as :class:`OutcomeUnknown`.
        """
        content = None if json_body is None else encode_json(json_body)
        fingerprint = hashlib.sha256(content or b"").hexdigest()
        attempt, reauthorized = 0, False
        while True:
            attempt += 1
            await self._turn()
            request = self._http.build_request(
                method,
                self._base_url + path,
                content=content,
                params=params,
                headers=await self._headers(content is not None, headers),
            )
            before = None if sends is None else await self._before_send(sends, fingerprint)
            outcome = await self._transmit(request)
            response = outcome if isinstance(outcome, httpx.Response) else None
            if response is not None and response.is_success:
                return response
            if response is not None and response.status_code == 401 and not reauthorized:
                reauthorized = True
                if await self._reauthorized(response, sends, before):
                    attempt -= 1
                    continue
            error = await self._failure(outcome, sends, before)
            delay = self._retry_delay(error, attempt, retry=retry)
            log.warning(
                "%s %s %s: %s (attempt %s of %s, retrying in %.1fs)",
                self.name,
                method,
                path,
                error.message,
                attempt,
                self._retry.attempts,
                delay,
            )
            await asyncio.sleep(delay)

    async def _turn(self) -> None:
        """Wait for this provider's turn among every process's calls (:class:`CallPacer`);
        an order's own turn first, so a 429 met while it waited still holds it off. Taken
        before the send is recorded: a wait never sits between the record and the send."""
        if self._pacer is not None:
            if self.orders_per_minute is not None and _OPERATION.get() in _PLACING:
                await self._pacer.before_order(self.name, self.orders_per_minute)
            await self._pacer.before_call(self.name, self.requests_per_minute)

    async def _failure(
        self,
        outcome: httpx.Response | ProviderError,
        sends: SendLog | None,
        before: SendRecord | None,
    ) -> ProviderError:
        """The error a failed attempt stands for, once what it says of the order is recorded
        in ``sends``; a 429 is also told to the pacer, so every process holds off."""
        if isinstance(outcome, httpx.Response):
            response: httpx.Response | None = outcome
            error = self._error_for(outcome)
        else:
            response, error = None, outcome
        if sends is not None and before is not None:
            error = await self._after_failed_send(sends, before, error, response)
        if isinstance(error, RateLimited) and self._pacer is not None:
            await self._pacer.rate_limited(self.name, error.retry_after)
        return error

    async def _reauthorized(
        self, response: httpx.Response, sends: SendLog | None, before: SendRecord | None
    ) -> bool:
        """A first 401: whether credentials were renewed, so the attempt is made again (and
        does not count)."""
        if not await self._on_unauthorized():
            return False
        if sends is not None and before is not None:
            # Refused unread: this attempt placed nothing.
            await self._after_failed_send(sends, before, AuthenticationFailed("401"), response)
        return True

    async def _transmit(self, request: httpx.Request) -> httpx.Response | ProviderError:
        """Send one attempt: the answer, whatever its status, or the transport failure; the
        observer is told how it went and how long it took."""
        started = time.monotonic()
        result = await self._send_once(request)
        if self._observer is not None:
            self._observer.provider_call(
                self.name, _OPERATION.get(), _outcome(result), time.monotonic() - started
            )
        return result

    async def _send_once(self, request: httpx.Request) -> httpx.Response | ProviderError:
        try:
            return await self._http.send(request)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
            # Never reached the provider: nothing can have been placed by this attempt.
            return _NotSent(f"The connection to {self.name} failed.")
        except httpx.TimeoutException:
            return _NoAnswerInTime(f"{self.name} did not answer in time.")
        except httpx.TransportError:
            return ProviderUnavailable(f"The connection to {self.name} failed.")

    def _retry_delay(self, error: ProviderError, attempt: int, *, retry: bool) -> float:
        """Seconds to wait before retrying after failed attempt number ``attempt``; raises
        ``error`` if it may not be retried (or the attempts are used up)."""
        if not (retry and isinstance(error, RetryableProviderError)):
            raise error
        if attempt >= self._retry.attempts:
            raise error
        return error.retry_after if isinstance(error, RateLimited) else self._retry.delay(attempt)

    async def _before_send(self, sends: SendLog, fingerprint: str) -> SendRecord:
        """Refuse to replay a key older than the provider keeps keys for, then record the send."""
        record = sends.record
        if (
            self.safe_replay_age is not None
            and record.unsettled_since is not None
            and record.first_sent_at is not None
            and sends.now() - record.first_sent_at > self.safe_replay_age
        ):
            raise OutcomeUnknown(
                f"{self.name} never confirmed this order, and its idempotency key is too old "
                f"to replay safely ({self.name} keeps keys for a limited time). Check "
                f"{self.name}'s order list before ordering again."
            )
        return await sends.sending(fingerprint)

    async def _after_failed_send(
        self,
        sends: SendLog,
        before: SendRecord,
        error: ProviderError,
        response: httpx.Response | None,
    ) -> ProviderError:
        """Record what a failed send says about the order; the error to go on with."""
        definite = isinstance(error, OrderRefused | RateLimited | _NotSent)
        if not definite:
            await sends.unanswered(answered=response is not None)
            return error
        if before.unsettled_since is None:
            await sends.settled()  # this was the only send, and it placed nothing
            return error
        if isinstance(error, OrderRefused):
            return OutcomeUnknown(
                f"{self.name} refused a retry of this order ({error.message}) after an earlier "
                "attempt's answer was lost, so the card may have been bought. Check "
                f"{self.name}'s order list before anything is ordered again."
            )
        return error

    async def _headers(self, has_body: bool, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"Accept": "application/json", **await self._auth_headers()}
        if has_body:
            headers["Content-Type"] = "application/json"
        return headers | dict(extra or {})

    def _error_for(self, response: httpx.Response) -> ProviderError:
        if response.status_code == 429:
            return RateLimited(f"{self.name} is rate limiting us.", self._retry_after(response))
        if response.status_code >= 500:
            return ProviderUnavailable(
                f"{self.name} had a server error (HTTP {response.status_code})."
            )
        return self._refusal_for(response)

    def _parse(self, response: httpx.Response, model: type[ModelT]) -> ModelT:
        """Validate a JSON answer. The body never reaches the error: it may hold codes."""
        return self._validate(model, self._json(response))

    @staticmethod
    def _error_body(response: httpx.Response, model: type[ModelT]) -> ModelT:
        """An error answer as ``model`` (whose fields all have defaults); one we cannot read
        is an empty ``model``, so the status code alone decides."""
        try:
            return model.model_validate_json(response.content)
        except ValidationError:
            return model()

    def _json(self, response: httpx.Response) -> Any:
        """A JSON answer as Python values, its numbers as exact ``Decimal``: pydantic's JSON
        path goes through float and would round long amounts."""
        try:
            return json.loads(response.content, parse_float=Decimal)
        except ValueError:
            raise self._unreadable() from None

    def _validate(self, model: type[ModelT], data: Any) -> ModelT:
        """Validate (part of) an answer read with ``_json``."""
        try:
            return model.model_validate(data)
        except ValidationError:
            raise self._unreadable() from None

    def _vendor_text(self, text: str | None, *, limit: int = VENDOR_TEXT_LIMIT) -> str:
        """A vendor's words for a user-facing message (:func:`~providers.errors.vendor_text`),
        with our own ``api_key`` redacted too."""
        own = () if self._api_key is None else (self._api_key.get_secret_value(),)
        return vendor_text(text, secrets=own, limit=limit)

    def _unreadable(self) -> ProviderUnavailable:
        return ProviderUnavailable(f"{self.name} sent an answer we could not read.")

    async def aclose(self) -> None:
        """The client is injected and shared: its owner closes it."""
