"""Button listeners."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

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


def register(app: AsyncApp) -> None:
    approve.register(app)
    reject.register(app)
    cancel.register(app)
    email_change.register(app)
    more_recipients.register(app)
    resend.register(app)
    resend_email.register(app)
    redeem_link.register(app)
    review.register(app)
