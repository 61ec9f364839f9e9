"""What an orchestrator and Prometheus ask a running bot: ``GET /healthz`` (the process
answers), ``GET /readyz`` (it can do its work) and ``GET /metrics``.

Unauthenticated, so they say nothing but check names, ``ok``/``failing`` and counts: no path,
token, user or error text. ``rewardbot serve`` answers them on its own port; ``rewardbot
socket`` on ``REWARDBOT_HEALTH_PORT`` (:func:`health_server`).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from bot.errors import ConfigError
from bot.metrics import CONTENT_TYPE
from bot.runtime import Runtime

log = logging.getLogger(__name__)

# The job runner's loop goes round every second when idle, but one round may wait on a busy
# database (SQLite's busy timeout is 5 s per statement) and a retention pass marks it alive
# only between batches: only a loop that is stuck stays silent for this long. An unready pod
# is taken out of the load balancer, so a slow database must not make it unready.
RUNNER_ALIVE_WITHIN = 30.0
# A database that takes longer than this to open and answer is not ready.
_DATABASE_TIMEOUT = 2.0


class Readiness(BaseModel):
    """The body of ``/readyz``: each check's result, and the ones failing."""

    model_config = ConfigDict(frozen=True)

    ready: bool
    checks: dict[str, str]
    failing: list[str]

    @classmethod
    def of(cls, results: dict[str, bool]) -> Readiness:
        failing = [name for name, ok in results.items() if not ok]
        checks = {name: "ok" if ok else "failing" for name, ok in results.items()}
        return cls(ready=not failing, checks=checks, failing=failing)


async def readiness(runtime: Runtime) -> Readiness:
    return Readiness.of(
        {
            "database": await runtime.store.answers(_DATABASE_TIMEOUT),
            "job_runner": runtime.jobs.ran_within(RUNNER_ALIVE_WITHIN),
            "slack_auth": runtime.gateway.auth_checked,
        }
    )


def add_health_routes(app: web.Application, runtime: Runtime) -> None:
    """Answer ``/healthz``, ``/readyz`` and ``/metrics`` on ``app``."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(_: web.Request) -> web.Response:
        result = await readiness(runtime)
        return web.json_response(result.model_dump(), status=200 if result.ready else 503)

    async def metrics(_: web.Request) -> web.Response:
        body = await runtime.metrics.exposition(runtime.store)
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


def cannot_listen(where: str, exc: OSError) -> ConfigError:
    """A port the bot cannot listen on (``where``: the setting or option that named it), as
    the one-line start-up failure it is."""
    reason = "address in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
    return ConfigError(f"Cannot listen on {where}: {reason}.")


@asynccontextmanager
async def health_server(runtime: Runtime, port: int) -> AsyncIterator[None]:
    """Answer the three endpoints on ``port`` (all interfaces, as an orchestrator's probes
    come from outside) until the block exits."""
    app = web.Application()
    add_health_routes(app, runtime)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, "0.0.0.0", port).start()  # noqa: S104
        except OSError as exc:
            raise cannot_listen(f"REWARDBOT_HEALTH_PORT={port}", exc) from None
        log.info("answering health and metrics on port %s", port)
        yield
    finally:
        await runner.cleanup()
