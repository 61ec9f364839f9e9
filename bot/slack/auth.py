"""Whether Slack accepts the bot token (``auth.test``): asked at start, and while Slack cannot
say (unreachable, a 5xx, rate limited), asked again in the background until it can.

Only an answer that says the token itself is wrong stops start-up: a bot that refused to start
whenever Slack had a bad minute would turn a Slack outage into an outage of its own. Until
Slack accepts the token, ``/readyz`` reports ``slack_auth`` failing (``SlackGateway.auth_checked``).
"""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.errors import SlackApiError

from bot.slack.gateway import SLACK_FAILURES, SlackGateway
from bot.slack.web_client import slack_error_code

log = logging.getLogger(__name__)

# Slack's answers to auth.test that mean the token is wrong: asking again will not help.
TOKEN_REFUSALS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)


class TokenRefused(Exception):
    """Slack refused the bot token with ``error``, one of :data:`TOKEN_REFUSALS`."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def _refusal(exc: Exception) -> str | None:
    """The code of a failed ``auth.test`` that refuses the token, else ``None``."""
    code = slack_error_code(exc) if isinstance(exc, SlackApiError) else None
    return code if code in TOKEN_REFUSALS else None


def _how_it_failed(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return slack_error_code(exc) or f"HTTP {exc.response.status_code}"
    return type(exc).__name__


class SlackAuthCheck:
    """Asks ``auth.test`` at start (:meth:`first`) and, if Slack could not answer, again in the
    background, ``first_delay`` seconds later and doubling up to ``max_delay``."""

    def __init__(
        self,
        gateway: SlackGateway,
        api_url: str,
        *,
        first_delay: float = 1.0,
        max_delay: float = 30.0,
    ) -> None:
        self._gateway = gateway
        self._api_url = api_url
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._rechecking: asyncio.Task[None] | None = None

    async def first(self) -> None:
        """Raises :class:`TokenRefused` if Slack refuses the token; if Slack cannot say, logs
        a warning, keeps asking in the background, and returns."""
        try:
            await self._gateway.check_auth()
        except SLACK_FAILURES as exc:
            refused = _refusal(exc)
            if refused is not None:
                raise TokenRefused(refused) from None
            log.warning(
                "cannot check SLACK_BOT_TOKEN with Slack at SLACK_API_URL (%s): %s; starting "
                "anyway, not ready until Slack accepts the token",
                self._api_url,
                _how_it_failed(exc),
            )
            self._rechecking = asyncio.create_task(self._recheck(), name="slack-auth-check")

    async def _recheck(self) -> None:
        delay = self._first_delay
        while True:
            await asyncio.sleep(delay)
            try:
                await self._gateway.check_auth()
            except SLACK_FAILURES as exc:
                refused = _refusal(exc)
                if refused is not None:
                    # A running bot is not stopped: it stays unready for the admin to see.
                    log.error(
                        "Slack refused SLACK_BOT_TOKEN (%s): check the bot token of the app's "
                        "installation; not ready",
                        refused,
                    )
                    return
                log.debug("Slack still cannot check the bot token: %s", _how_it_failed(exc))
            except Exception:
                # Not Slack's answer: say so, and keep asking rather than stay unready silently.
                log.exception("checking SLACK_BOT_TOKEN with Slack failed")
            else:
                log.info("Slack accepts SLACK_BOT_TOKEN now")
                return
            delay = min(delay * 2, self._max_delay)

    async def aclose(self) -> None:
        """Stop asking (a bot stopping before Slack answered)."""
        if self._rechecking is not None:
            self._rechecking.cancel()
            await asyncio.gather(self._rechecking, return_exceptions=True)
