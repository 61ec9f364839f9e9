"""Socket Mode server side: one-time WebSocket URLs, ``hello``, envelopes and acks.

slack_sdk's Socket Mode client calls ``apps.connections.open``, connects to the URL,
waits for ``hello`` and answers each envelope with ``{"envelope_id", "payload"}``.

An app may hold several connections at once (Slack allows up to 10; one per process when the
app runs as several), and Slack spreads the envelopes across them. Slack promises no order;
the emulator takes the live connections in turn, in the order they connected. Each ``hello``
says how many connections are open, the new one included (``num_connections``).

Each envelope waits up to the ack timeout (3 s in Slack) for its answer; no answer means "the
app did not respond". A connection that closes first never answers: its unanswered envelopes
are "no ack" at once rather than after the timeout. Slack's answer to that is its retry policy,
which the emulator leaves to its caller, as over HTTP: an ``events_api`` envelope is sent
again with ``retry_attempt`` and ``retry_reason`` (``SocketDelivery.redeliver_last``), on
whichever live connection's turn it is; slash commands and interactive payloads are not
retried (the user sees an error).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from bot.offline.emulator.context import JSON
from bot.offline.emulator.errors import EmulatorError
from bot.offline.emulator.ids import opaque_token

log = logging.getLogger(__name__)


class _ConnectionLost(Exception):
    """The connection an envelope went out on closed before the envelope was answered."""


@dataclass(eq=False)
class _Connection:
    """One live WebSocket, numbered in the order connections were opened (from 1), with the
    envelopes sent on it that wait for their ack."""

    number: int
    ws: web.WebSocketResponse
    unanswered: dict[str, asyncio.Future[JSON | None]] = field(default_factory=dict)

    def lose_unanswered(self) -> None:
        for future in self.unanswered.values():
            if not future.done():
                future.set_exception(_ConnectionLost())


class SocketModeHub:
    """Issues socket URLs, holds live connections, sends envelopes, collects acks."""

    def __init__(self, app_id: str, connect_timeout: float = 3.0) -> None:
        self.app_id = app_id
        self.connect_timeout = connect_timeout
        self.base_ws_url = ""
        # Envelopes answered, by the number of the connection that answered them.
        self.answered: Counter[int] = Counter()
        self._tickets: set[str] = set()
        self._connections: list[_Connection] = []
        self._opened = 0
        self._turn = 0
        # One connection joins at a time, so each hello counts the ones before it.
        self._joining = asyncio.Lock()
        self._connected = asyncio.Event()

    @property
    def connection_count(self) -> int:
        """Number of live Socket Mode connections."""
        return len(self._connections)

    @property
    def connection_numbers(self) -> list[int]:
        """The live connections' numbers, in the order they connected (the first connection
        ever opened is 1, the next 2, and so on)."""
        return [connection.number for connection in self._connections]

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
        async with self._joining:
            self._opened += 1
            connection = _Connection(self._opened, ws)
            await ws.send_json(self._hello(len(self._connections) + 1))
            self._connections.append(connection)
            self._connected.set()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(connection, msg.data)
        finally:
            self._drop(connection)
        return ws

    def _hello(self, num_connections: int) -> JSON:
        return {
            "type": "hello",
            "num_connections": num_connections,
            "debug_info": {"host": "emulator", "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.app_id},
        }

    def _drop(self, connection: _Connection) -> None:
        """Take a closed (or closing) connection out of the turn; what it left unanswered
        is answered "no ack" now."""
        if connection in self._connections:
            self._connections.remove(connection)
        if not self._connections:
            self._connected.clear()
        connection.lose_unanswered()

    def _on_text(self, connection: _Connection, data: str) -> None:
        try:
            message: Any = json.loads(data)
        except json.JSONDecodeError:
            log.warning("socket mode: ignoring non-JSON message %r", data)
            return
        if not isinstance(message, dict):
            return
        future = connection.unanswered.get(str(message.get("envelope_id")))
        if future is not None and not future.done():
            payload = message.get("payload")
            future.set_result(payload if isinstance(payload, dict) else None)
            self.answered[connection.number] += 1

    async def deliver(
        self, envelope_type: str, payload: JSON, ack_timeout: float, extra: JSON | None = None
    ) -> JSON | None:
        """Send one envelope on the connection whose turn it is; return the ack's payload ({} if
        none), or None if no ack came (timeout, or its connection closed first).

        ``extra`` overrides or adds envelope fields (``events_api`` envelopes carry
        ``retry_attempt``/``retry_reason`` and do not accept a response payload)."""
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            # Slack adds retry_attempt / retry_reason only to events_api envelopes.
            "accepts_response_payload": True,
            **(extra or {}),
        }
        future: asyncio.Future[JSON | None] = asyncio.get_running_loop().create_future()
        connection = await self._send(envelope_id, envelope, future)
        try:
            ack = await asyncio.wait_for(future, ack_timeout)
        except (TimeoutError, _ConnectionLost):
            return None
        finally:
            connection.unanswered.pop(envelope_id, None)
        return ack if ack is not None else {}

    async def _send(
        self, envelope_id: str, envelope: JSON, future: asyncio.Future[JSON | None]
    ) -> _Connection:
        """Send ``envelope`` on the next connection in turn and return that connection. One that
        is already closing refuses the write, so nothing was sent: the next one takes it."""
        while True:
            connection = await self._next_connection()
            connection.unanswered[envelope_id] = future
            try:
                await connection.ws.send_json(envelope)
            except ConnectionResetError:
                del connection.unanswered[envelope_id]
                self._drop(connection)
                continue
            return connection

    async def _next_connection(self) -> _Connection:
        """The live connection whose turn it is; waits a moment for one if there is none."""
        try:
            async with asyncio.timeout(self.connect_timeout):
                while not self._connections:
                    await self._connected.wait()
        except TimeoutError as exc:
            raise EmulatorError("no Socket Mode connection: is the bot running?") from exc
        connection = self._connections[self._turn % len(self._connections)]
        self._turn += 1
        return connection

    async def close(self) -> None:
        """Close every connection (the client may try to reconnect: stop it first)."""
        for connection in list(self._connections):
            with contextlib.suppress(Exception):
                await connection.ws.close()
