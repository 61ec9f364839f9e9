"""Slash command listeners."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.runtime import Runtime
from handlers.commands import reward


def register(app: AsyncApp, deps: Runtime) -> None:
    reward.register(app, deps)
