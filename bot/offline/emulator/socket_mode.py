"""Socket Mode server side: one-time WebSocket URLs, ``hello``, envelopes and acks.

slack_sdk's Socket Mode client calls ``apps.connections.open``, connects to the URL,
waits for ``hello`` and answers each envelope with ``{"envelope_id", "payload"}``.
The emulator delivers every envelope on the newest live connection and waits up to the
ack timeout (3 s in Slack) for that answer; no answer means "the app did not respond".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from bot.offline.emulator.context import JSON
from bot.offline.emulator.errors import EmulatorError
from bot.offline.emulator.ids import opaque_token

log = logging.getLogger(__name__)


class SocketModeHub:
    """Issues socket URLs, holds live connections, sends envelopes, collects acks."""

    def __init__(self, app_id: str, connect_timeout: float = 3.0) -> None:
        self.app_id = app_id
        self.connect_timeout = connect_timeout
        self.base_ws_url = ""
        self._tickets: set[str] = set()
        self._connections: list[web.WebSocketResponse] = []
        self._pending: dict[str, asyncio.Future[JSON | None]] = {}
        self._connected = asyncio.Event()

    @property
    def connection_count(self) -> int:
        """Number of live Socket Mode connections."""
        return len(self._connections)

    def issue_url(self) -> str:
        """A single-use WebSocket URL, like the one ``apps.connections.open`` returns."""
        ticket = opaque_token()
        self._tickets.add(ticket)
        return f"{self.base_ws_url}/socket-mode/{ticket}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """aiohttp handler for ``/socket-mode/{ticket}``; serves one connection."""
        ticket = request.match_info["ticket"]
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._connections) + 1,
                "debug_info": {"host": "emulator", "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id},
            }
        )
        self._connections.append(ws)
        self._connected.set()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(msg.data)
        finally:
            self._connections.remove(ws)
            if not self._connections:
                self._connected.clear()
        return ws

    def _on_text(self, data: str) -> None:
        try:
            message: Any = json.loads(data)
        except json.JSONDecodeError:
            log.warning("socket mode: ignoring non-JSON message %r", data)
            return
        if not isinstance(message, dict):
            return
        future = self._pending.get(str(message.get("envelope_id")))
        if future is not None and not future.done():
            payload = message.get("payload")
            future.set_result(payload if isinstance(payload, dict) else None)

    async def deliver(
        self, envelope_type: str, payload: JSON, ack_timeout: float, extra: JSON | None = None
    ) -> JSON | None:
        """Send one envelope; return the ack's payload ({} if none), or None on timeout.

        ``extra`` overrides or adds envelope fields (``events_api`` envelopes carry
        ``retry_attempt``/``retry_reason`` and do not accept a response payload)."""
        if not self._connections:
            try:
                await asyncio.wait_for(self._connected.wait(), self.connect_timeout)
            except TimeoutError as exc:
                raise EmulatorError("no Socket Mode connection: is the bot running?") from exc
        envelope_id = str(uuid.uuid4())
        future: asyncio.Future[JSON | None] = asyncio.get_running_loop().create_future()
        self._pending[envelope_id] = future
        envelope = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            # Slack adds retry_attempt / retry_reason only to events_api envelopes.
            "accepts_response_payload": True,
            **(extra or {}),
        }
        try:
            await self._connections[-1].send_json(envelope)
            ack = await asyncio.wait_for(future, ack_timeout)
            return ack if ack is not None else {}
        except TimeoutError:
            return None
        finally:
            self._pending.pop(envelope_id, None)

    async def close(self) -> None:
        """Close every connection (the client may try to reconnect: stop it first)."""
        for ws in list(self._connections):
            with contextlib.suppress(Exception):
                await ws.close()
