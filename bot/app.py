"""The Bolt app: Slack's requests in, handlers registered, errors logged."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp, AsyncRespond

import handlers
from bot.health import health_server
from bot.redaction import quiet_payload_loggers
from bot.runtime import Runtime
from bot.slack.gateway import SLACK_FAILURES
from bot.store import DATABASE_ERRORS, database_problem

log = logging.getLogger(__name__)

# Told privately to someone whose command or click failed because the database was unavailable.
DATABASE_UNAVAILABLE = (
    ":warning: Rewardbot cannot reach its database right now, so that may not have gone "
    "through. Please try again in a minute."
)


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
            # Slack gets its answer as soon as a listener acks: never after a Web API call.
            # The rest of the listener runs on; a stop waits for it (runtime.listeners), so
            # none is cut off midway. Slow work (orders, announcements) is a durable job.
            process_before_response=False,
        )
    app.listener_runner.listener_start_handler = runtime.listeners.start_handler
    app.listener_runner.listener_completion_handler = runtime.listeners.completion_handler

    # Bolt gives its app logger the root logger's level: at DEBUG it would log every payload.
    quiet_payload_loggers(app.logger)

    @app.error
    async def on_unhandled(error: Exception, respond: AsyncRespond | None) -> None:
        # A listener that failed before it acked is answered with a 500, which Slack shows as
        # a failure (beside a button, above a form: a submission is stored before its ack), so
        # the user can try again; one that failed after its ack is explained below where it
        # can be. Slack's own failures are OSErrors too (a timeout, a reset connection), but
        # not the database's.
        if not isinstance(error, DATABASE_ERRORS) or isinstance(error, SLACK_FAILURES):
            log.error("unhandled error in a Slack listener: %s: %s", type(error).__name__, error)
            return
        # Not the error's text: SQLAlchemy's quotes the statement and its parameters.
        log.error("a Slack listener failed: database unavailable (%s)", database_problem(error))
        # A command or a click in a message also says why, in words (a form has no
        # response_url: Slack shows the failure above it, and the form stays open).
        if respond is not None and respond.response_url:
            with contextlib.suppress(*SLACK_FAILURES):
                await respond(DATABASE_UNAVAILABLE)

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
