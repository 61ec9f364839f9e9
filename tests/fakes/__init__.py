"""Local fake vendor servers that behave as the vendors' docs say, for contract and e2e tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
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
