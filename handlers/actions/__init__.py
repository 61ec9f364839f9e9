"""Button listeners."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.runtime import Runtime
from handlers.actions import (
    approve,
    cancel,
    email_change,
    more_recipients,
    redeem_link,
    reject,
    resend,
    resend_email,
    review,
)


def register(app: AsyncApp, deps: Runtime) -> None:
    approve.register(app, deps)
    reject.register(app, deps)
    cancel.register(app, deps)
    email_change.register(app, deps)
    more_recipients.register(app, deps)
    resend.register(app, deps)
    resend_email.register(app, deps)
    redeem_link.register(app, deps)
    review.register(app, deps)
