"""Modal submission listeners."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers.views import reject_reason, resend_email, reward_request


def register(app: AsyncApp) -> None:
    reward_request.register(app)
    reject_reason.register(app)
    resend_email.register(app)
