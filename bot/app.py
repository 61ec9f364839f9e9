"""The Bolt app: Slack's requests in, handlers registered, errors logged."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

import handlers
from bot.health import health_server
from bot.redaction import quiet_payload_loggers
from bot.runtime import Runtime

log = logging.getLogger(__name__)


@contextmanager
def _bot_token_hidden_from_bolt() -> Iterator[None]:
    """Bolt takes SLACK_BOT_TOKEN from the environment whenever it is given no token, and then
    warns on every start that the token is unused beside ``client``: a token argument cannot
    stop it (a blank one falls back too), and Bolt cannot be given the client's API URL and
    timeouts without the client. So the variable is hidden while Bolt reads it, and put back
    after: the rest of the process (and anything it starts) still sees its environment."""
    token = os.environ.pop("SLACK_BOT_TOKEN", None)
    try:
        yield
    finally:
        if token is not None:
            os.environ["SLACK_BOT_TOKEN"] = token


def build_app(runtime: Runtime, *, socket_mode: bool = False) -> AsyncApp:
    """Build the Bolt app. Over HTTP every request's signature is verified; over Socket Mode
    the authenticated WebSocket takes that role."""
    secret = runtime.settings.slack_signing_secret
    with _bot_token_hidden_from_bolt():
        app = AsyncApp(
            client=runtime.gateway.client,
            signing_secret=secret.get_secret_value() if secret else None,
            request_verification_enabled=not socket_mode,
            # Each listener acks first and then finishes its (short) work before the response
            # is sent, so no listener outlives its request: a clean stop never cuts one off
            # midway. Slow work (orders, announcements) is queued as durable jobs instead.
            process_before_response=True,
        )

    # Bolt gives its app logger the root logger's level: at DEBUG it would log every payload.
    quiet_payload_loggers(app.logger)

    @app.error
    async def log_unhandled(error: Exception) -> None:
        log.error("unhandled error in a Slack listener: %s: %s", type(error).__name__, error)

    handlers.register(app, runtime)
    return app


@asynccontextmanager
async def socket_mode_connection(
    runtime: Runtime, app_token: str, *, health_port: int | None = None
) -> AsyncIterator[None]:
    """Start the runtime and stay connected over Socket Mode until the block exits; answer
    health and metrics on ``health_port`` meanwhile, if one is given. The runtime is closed
    on the way out, whether start-up failed or not."""
    async with contextlib.AsyncExitStack() as parts:
        parts.push_async_callback(runtime.aclose)
        handler = AsyncSocketModeHandler(build_app(runtime, socket_mode=True), app_token)
        parts.push_async_callback(handler.close_async)
        if health_port is not None:
            # Up before the connection, so an orchestrator sees the process alive (not yet
            # ready) while it connects.
            await parts.enter_async_context(health_server(runtime, health_port))
        await runtime.start()
        await handler.connect_async()  # type: ignore[no-untyped-call]
        yield
