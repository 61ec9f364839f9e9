"""Slack listeners, grouped by payload kind. Thin: parse, ack, call the core, render."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.runtime import Runtime
from handlers import actions, commands, events, options, views


def register(app: AsyncApp, deps: Runtime) -> None:
    commands.register(app, deps)
    views.register(app, deps)
    actions.register(app, deps)
    options.register(app, deps)
    events.register(app, deps)
