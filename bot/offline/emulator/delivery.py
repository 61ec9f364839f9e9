"""How the emulator reaches the bot: signed HTTP POSTs or Socket Mode envelopes.

Both transports carry the same payloads and produce the same ``BotReply``, so the
driver (and the tests) do not care which one the bot is configured for.

Over HTTP the emulator can also stand in for a load balancer in front of several copies of
the bot (:class:`HttpDelivery` with several Request URLs): each request goes to one of them,
chosen at random, and one that refuses the connection (its process is down) is skipped for
another, as a load balancer's health routing would. Slack itself still sends one request per
user action; which copy of the bot receives it is the balancer's business.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import aiohttp

from bot.offline.emulator.context import JSON
from bot.offline.emulator.errors import EmulatorError
from bot.offline.emulator.signing import signed_headers
from bot.offline.emulator.socket_mode import SocketModeHub


@dataclass
class BotReply:
    """What the bot answered: HTTP status (0 if it did not answer in time) and body."""

    status: int
    body: JSON | str | None = None

    @property
    def responded(self) -> bool:
        """True if the bot acknowledged within Slack's 3-second window."""
        return self.status == 200

    @property
    def json(self) -> JSON:
        """The body as an object: text bodies become ``{"text": ...}``, as Slack reads them."""
        if isinstance(self.body, dict):
            return self.body
        if isinstance(self.body, str) and self.body:
            return {"text": self.body}
        return {}


class Delivery(Protocol):
    """A transport to the bot."""

    async def slash_command(self, fields: dict[str, str]) -> BotReply:
        """Deliver a slash command invocation."""
        ...

    async def interactive(self, payload: JSON) -> BotReply:
        """Deliver an interactivity payload (block_actions, view_submission, ...)."""
        ...

    async def event(self, envelope: JSON) -> BotReply:
        """Deliver an Events API ``event_callback`` envelope."""
        ...


_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"


class HttpDelivery:
    """Signed POSTs to the bot's Request URL: form-encoded for commands and interactions,
    JSON for Events API envelopes (as Slack sends each).

    With ``more_urls``, a load balancer in front of several copies of the bot: each request
    goes to one URL picked with ``rng``; if that one refuses the connection, the others are
    tried in a random order (a request that reached a bot is never sent to another: a
    connection lost after that raises, as Slack would see an error). If every URL refuses,
    the last refusal is raised. ``last_url`` is where the latest request went."""

    def __init__(
        self,
        request_url: str,
        signing_secret: str,
        timeout: float,
        *,
        more_urls: Sequence[str] = (),
        rng: random.Random | None = None,
    ) -> None:
        self.request_url = request_url
        self.request_urls: tuple[str, ...] = (request_url, *more_urls)
        self.signing_secret = signing_secret
        self.timeout = timeout
        self.last_url: str | None = None
        self._rng = rng or random.Random()  # noqa: S311 - routing, not security
        self._session: aiohttp.ClientSession | None = None
        self._last_body: str | None = None
        self._last_content_type = _FORM

    async def close(self) -> None:
        """Release the HTTP client session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def slash_command(self, fields: dict[str, str]) -> BotReply:
        """Slash commands arrive as plain form fields."""
        return await self._post(urlencode(fields))

    async def interactive(self, payload: JSON) -> BotReply:
        """Interactions arrive as a single ``payload`` form field holding JSON."""
        return await self._post(urlencode({"payload": json.dumps(payload)}))

    async def event(self, envelope: JSON) -> BotReply:
        """Events arrive as the JSON envelope itself (``Content-Type: application/json``)."""
        return await self._post(json.dumps(envelope), content_type=_JSON)

    async def redeliver_last(self, retry_num: int, reason: str = "http_timeout") -> BotReply:
        """Send the last request again, freshly signed, as Slack's retry mechanism does:
        ``X-Slack-Retry-Num`` and ``X-Slack-Retry-Reason`` say it is a retry."""
        if self._last_body is None:
            raise EmulatorError("nothing was delivered yet")
        return await self._post(
            self._last_body,
            {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": reason},
            content_type=self._last_content_type,
        )

    async def _post(
        self,
        body: str,
        extra_headers: dict[str, str] | None = None,
        *,
        content_type: str = _FORM,
    ) -> BotReply:
        if self._session is None:
            # Behind a balancer, no kept-alive connections: one to a copy that has since died
            # would fail a request that never reached any bot.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=len(self.request_urls) > 1)
            )
        self._last_body = body
        self._last_content_type = content_type
        headers = {"Content-Type": content_type, **(extra_headers or {})}
        headers.update(signed_headers(self.signing_secret, body))
        targets = self._targets()
        for index, url in enumerate(targets):
            self.last_url = url
            try:
                return await self._post_to(self._session, url, body, headers)
            except aiohttp.ClientConnectorError:
                # Refused before anything was sent: that copy is down, try another.
                if index == len(targets) - 1:
                    raise
        raise AssertionError("unreachable: the last target returns or raises")

    def _targets(self) -> list[str]:
        """The URLs to try for one request, the chosen one first."""
        if len(self.request_urls) == 1:
            return list(self.request_urls)
        return self._rng.sample(self.request_urls, len(self.request_urls))

    async def _post_to(
        self, session: aiohttp.ClientSession, url: str, body: str, headers: dict[str, str]
    ) -> BotReply:
        try:
            async with session.post(
                url,
                data=body.encode(),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as resp:
                text = await resp.text()
                parsed: Any = text or None
                if text and resp.content_type == "application/json":
                    parsed = json.loads(text)
                return BotReply(resp.status, parsed)
        except TimeoutError:
            return BotReply(0)


class SocketDelivery:
    """Envelopes over the bot's Socket Mode connections (see :class:`SocketModeHub`)."""

    def __init__(self, hub: SocketModeHub, timeout: float) -> None:
        self.hub = hub
        self.timeout = timeout
        self._last: tuple[str, JSON] | None = None

    async def slash_command(self, fields: dict[str, str]) -> BotReply:
        """``slash_commands`` envelope; the payload is the form fields as an object."""
        return await self._deliver("slash_commands", dict(fields))

    async def interactive(self, payload: JSON) -> BotReply:
        """``interactive`` envelope carrying the same JSON as the HTTP ``payload`` field."""
        return await self._deliver("interactive", payload)

    async def event(self, envelope: JSON) -> BotReply:
        """``events_api`` envelope carrying the same JSON Slack would POST over HTTP."""
        return await self._deliver("events_api", envelope, _event_fields(0, ""))

    async def redeliver_last(self, retry_num: int, reason: str = "timeout") -> BotReply:
        """Send the last envelope's payload again, in a new envelope, as Slack retries an event
        it got no ack for: ``retry_attempt`` and ``retry_reason`` say it is a retry. It goes to
        whichever live connection's turn it is, often not the one that failed. Slack retries
        only Events API envelopes: a slash command or interactive payload that got no ack is
        an error the user sees, and is not sent again."""
        if self._last is None:
            raise EmulatorError("nothing was delivered yet")
        envelope_type, payload = self._last
        if envelope_type != "events_api":
            raise EmulatorError(
                f"Slack retries only Events API envelopes, not {envelope_type}: the user sees "
                "an error and may try again"
            )
        return await self._deliver(envelope_type, payload, _event_fields(retry_num, reason))

    async def _deliver(
        self, envelope_type: str, payload: JSON, extra: JSON | None = None
    ) -> BotReply:
        self._last = (envelope_type, payload)
        ack = await self.hub.deliver(envelope_type, payload, self.timeout, extra)
        if ack is None:
            return BotReply(0)
        return BotReply(200, ack or None)


def _event_fields(retry_attempt: int, retry_reason: str) -> JSON:
    """The envelope fields only ``events_api`` envelopes have (and no response payload)."""
    return {
        "accepts_response_payload": False,
        "retry_attempt": retry_attempt,
        "retry_reason": retry_reason,
    }
