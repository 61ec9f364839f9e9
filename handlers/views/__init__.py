"""Modal submission listeners."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.runtime import Runtime
from handlers.views import reject_reason, resend_email, reward_request


def register(app: AsyncApp, deps: Runtime) -> None:
    reward_request.register(app, deps)
    reject_reason.register(app, deps)
    resend_email.register(app, deps)
