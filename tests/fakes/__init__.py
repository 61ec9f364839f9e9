"""Local fake vendor servers that behave as the vendors' docs say, for contract and e2e tests.

Every vendor's fake has one shape: its module (``tests.fakes.runa``, ``.ugiftme``,
``.giftronaut``, ``.cardpluspay``) holds a ``<Vendor>State`` class (what the vendor knows, what
the fake has seen, and the switches that inject faults) and one function ``app(state)`` that
returns the ``aiohttp`` application serving it. A test builds the state, serves
``app(state)`` with :func:`serve`, and inspects or flips the state while the bot talks to it::

    state = RunaState()
    async with serve(app(state)) as url:
        ...

Modules importing several fakes import each ``app`` under the vendor's name
(``from tests.fakes.runa import app as runa_app``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager

from aiohttp import web


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Run ``app`` on an ephemeral loopback port; yields its base URL (no trailing slash)."""
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def drop_connection(request: web.Request) -> web.StreamResponse:
    """Close the socket without answering, as a dropped connection or a crashed proxy would.

    Return its result from a handler *after* the vendor-side effect happened to simulate
    "the order was placed but the answer was lost".
    """
    assert request.transport is not None
    request.transport.close()
    return web.Response(status=500)  # never reaches the client


CrashCallback = Callable[[], Awaitable[None]]


class Tripwire:
    """Runs a callback once when a matching request reaches a fake server, either before the
    fake handles it or after it did but before the answer leaves (tests crash the bot there)."""

    def __init__(self) -> None:
        self._armed: list[tuple[str, str, bool, CrashCallback]] = []

    def arm(self, method: str, path_prefix: str, callback: CrashCallback, *, after: bool) -> None:
        self._armed.append((method, path_prefix, after, callback))

    async def _fire(self, request: web.Request, *, after: bool) -> None:
        for armed in list(self._armed):
            method, prefix, when_after, callback = armed
            if request.method == method and request.path.startswith(prefix) and when_after == after:
                self._armed.remove(armed)
                await callback()

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        await self._fire(request, after=False)
        response = await handler(request)
        await self._fire(request, after=True)
        return response


# The bot's idempotency keys: ``rewardbot-<request id>-<32 hex digits>``.
_BOT_KEY = re.compile(r"rewardbot-(\d+)-[0-9a-f]{32}")


def request_id_of_key(key: str | None) -> int | None:
    """The reward request an idempotency key of the bot's names, or ``None`` for another key."""
    found = _BOT_KEY.fullmatch(key or "")
    return int(found.group(1)) if found else None


def orders_by_request(keys: Iterable[str | None]) -> Counter[int | None]:
    """How many orders each request has, from the keys the orders were created with (a
    fake's ``created_keys``); orders under keys that are not the bot's count under ``None``."""
    return Counter(request_id_of_key(key) for key in keys)
