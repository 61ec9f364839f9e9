"""The Slack Web API client every call goes through, telling an observer (the bot's metrics)
about each failed call and each rate limit, by Web API method only."""

from __future__ import annotations

from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse


def slack_error_code(exc: SlackApiError) -> str | None:
    """Slack's error code in a refused call's answer, or ``None`` when the answer is not Slack's
    JSON (a proxy's or Slack's own 5xx page, a cut-off body): its data is then text, and
    reading it like a dict would raise in place of the ``SlackApiError``."""
    data = getattr(exc.response, "data", None)
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    return error if isinstance(error, str) and error else None


class SlackCallObserver(Protocol):
    def slack_error(self, method: str, error: str) -> None:
        """A call of ``method`` failed: ``error`` is Slack's error code, or how it failed."""

    def slack_rate_limit(self, method: str) -> None:
        """Slack answered a call of ``method`` with HTTP 429."""


class RateLimitCounter(AsyncRetryHandler):
    """Reports every 429 and never retries itself: it goes first, and the next handler decides
    whether to retry (and honours Slack's Retry-After)."""

    def __init__(self, observer: SlackCallObserver) -> None:
        super().__init__(max_retry_count=0)
        self._observer = observer

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is not None and response.status_code == 429:
            self._observer.slack_rate_limit(request.url.rsplit("/", 1)[-1])
        return False


class ObservedWebClient(AsyncWebClient):
    """An ``AsyncWebClient`` that reports its failed calls and 429s to ``observer``."""

    def __init__(self, observer: SlackCallObserver, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.observer = observer
        self.retry_handlers.insert(0, RateLimitCounter(observer))

    def without_retries(self) -> ObservedWebClient:
        """The same client, observed alike, that never retries a call (for a call whose lost
        answer must not make it happen twice)."""
        return ObservedWebClient(
            self.observer,
            token=self.token,
            base_url=self.base_url,
            timeout=self.timeout,
            retry_handlers=[],
        )

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        try:
            return await super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            # An answer without Slack's code counts as "other" (the metric's label for it).
            self.observer.slack_error(api_method, slack_error_code(exc) or "other")
            raise
        except TimeoutError:
            self.observer.slack_error(api_method, "timeout")
            raise
        except aiohttp.ClientError:
            self.observer.slack_error(api_method, "connection_error")
            raise
