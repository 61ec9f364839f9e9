"""Slash command listeners."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers.commands import reward


def register(app: AsyncApp) -> None:
    reward.register(app)
