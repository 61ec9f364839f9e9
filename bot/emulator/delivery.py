"""How the emulator reaches the bot: signed HTTP POSTs or Socket Mode envelopes.

Both transports carry the same payloads and produce the same ``BotReply``, so the
driver (and the tests) do not care which one the bot is configured for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import aiohttp

from bot.emulator.context import JSON
from bot.emulator.errors import EmulatorError
from bot.emulator.signing import signed_headers
from bot.emulator.socket_mode import SocketModeHub


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
    JSON for Events API envelopes (as Slack sends each)."""

    def __init__(self, request_url: str, signing_secret: str, timeout: float) -> None:
        self.request_url = request_url
        self.signing_secret = signing_secret
        self.timeout = timeout
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
            self._session = aiohttp.ClientSession()
        self._last_body = body
        self._last_content_type = content_type
        headers = {"Content-Type": content_type, **(extra_headers or {})}
        headers.update(signed_headers(self.signing_secret, body))
        try:
            async with self._session.post(
                self.request_url,
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
    """Envelopes over the bot's Socket Mode connection."""

    def __init__(self, hub: SocketModeHub, timeout: float) -> None:
        self.hub = hub
        self.timeout = timeout

    async def slash_command(self, fields: dict[str, str]) -> BotReply:
        """``slash_commands`` envelope; the payload is the form fields as an object."""
        return self._reply(await self.hub.deliver("slash_commands", dict(fields), self.timeout))

    async def interactive(self, payload: JSON) -> BotReply:
        """``interactive`` envelope carrying the same JSON as the HTTP ``payload`` field."""
        return self._reply(await self.hub.deliver("interactive", payload, self.timeout))

    async def event(self, envelope: JSON) -> BotReply:
        """``events_api`` envelope carrying the same JSON Slack would POST over HTTP."""
        extra: JSON = {"accepts_response_payload": False, "retry_attempt": 0, "retry_reason": ""}
        return self._reply(await self.hub.deliver("events_api", envelope, self.timeout, extra))

    @staticmethod
    def _reply(ack: JSON | None) -> BotReply:
        if ack is None:
            return BotReply(0)
        return BotReply(200, ack or None)
