"""The shared steps of every HTTP provider adapter: build, send with retries, map errors, parse.

Vendor modules subclass :class:`HttpProvider` and fill in the hooks (auth headers, how a 4xx
body maps to the error taxonomy, where a 429 says to wait); they never call httpx directly.
The injected ``httpx.AsyncClient`` is the test seam: tests point it at a local fake server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from providers.base import Provider
from providers.errors import (
    AuthenticationFailed,
    OrderDeclined,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    RetryableProviderError,
)

log = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)

DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


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

    def __init__(
        self, http: httpx.AsyncClient, base_url: str, *, retry: RetryPolicy | None = None
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._retry = retry or RetryPolicy()

    # -- hooks for vendor modules ---------------------------------------------------------

    async def _auth_headers(self) -> dict[str, str]:
        """Headers that authenticate a request."""
        return {}

    async def _on_unauthorized(self) -> bool:
        """A 401 arrived: renew credentials and return True to retry once (OAuth tokens)."""
        return False

    def _refusal_for(self, response: httpx.Response) -> ProviderError:
        """Map a 4xx answer (other than 429) to the taxonomy. Never put secrets in messages."""
        if response.status_code in (401, 403):
            return AuthenticationFailed(f"{self.name} rejected our credentials.")
        return OrderDeclined(f"{self.name} refused the request (HTTP {response.status_code}).")

    def _retry_after(self, response: httpx.Response) -> float:
        """Seconds a 429 asks us to wait."""
        try:
            return max(float(response.headers.get("Retry-After", "")), 0.0)
        except ValueError:
            return self._retry.base_delay

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
    ) -> httpx.Response:
        """Send one request, retrying what may be retried with the *identical* body.

        ``retry=False`` is for calls that are unsafe to repeat (an order without an
        idempotency key): the first retryable failure is raised to the caller.
        """
        content = None if json_body is None else encode_json(json_body)
        attempt, reauthorized = 0, False
        while True:
            attempt += 1
            request = self._http.build_request(
                method,
                self._base_url + path,
                content=content,
                params=params,
                headers=await self._headers(content is not None, headers),
            )
            try:
                response = await self._http.send(request)
            except httpx.TimeoutException:
                error: ProviderError = ProviderUnavailable(f"{self.name} did not answer in time.")
            except httpx.TransportError:
                error = ProviderUnavailable(f"The connection to {self.name} failed.")
            else:
                if response.is_success:
                    return response
                if response.status_code == 401 and not reauthorized:
                    reauthorized = True
                    if await self._on_unauthorized():
                        attempt -= 1
                        continue
                error = self._error_for(response)
            if not (retry and isinstance(error, RetryableProviderError)):
                raise error
            if attempt >= self._retry.attempts:
                raise error
            delay = (
                error.retry_after if isinstance(error, RateLimited) else self._retry.delay(attempt)
            )
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
        try:
            # Numbers become Decimal straight from their text: pydantic's JSON path goes
            # through float and would round long amounts.
            return model.model_validate(json.loads(response.content, parse_float=Decimal))
        except (ValueError, ValidationError):
            raise ProviderUnavailable(f"{self.name} sent an answer we could not read.") from None

    async def aclose(self) -> None:
        """The client is injected and shared: its owner closes it."""
