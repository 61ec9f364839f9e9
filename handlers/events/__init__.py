"""Events API listeners."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers.events import app_home_opened


def register(app: AsyncApp) -> None:
    app_home_opened.register(app)
