"""The Bolt app: Slack's requests in, handlers registered, errors logged."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp

import handlers
from bot.runtime import Runtime

log = logging.getLogger(__name__)


def build_app(runtime: Runtime, *, socket_mode: bool = False) -> AsyncApp:
    """Build the Bolt app. Over HTTP every request's signature is verified; over Socket Mode
    the authenticated WebSocket takes that role."""
    secret = runtime.settings.slack_signing_secret
    app = AsyncApp(
        client=runtime.gateway.client,
        signing_secret=secret.get_secret_value() if secret else None,
        request_verification_enabled=not socket_mode,
    )

    @app.error
    async def log_unhandled(error: Exception) -> None:
        log.error("unhandled error in a Slack listener: %s: %s", type(error).__name__, error)

    handlers.register(app, runtime)
    return app
