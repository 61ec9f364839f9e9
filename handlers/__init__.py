"""Slack listeners, grouped by payload kind. Thin: parse, ack, call the core, render.

Each listener is a module-level function Bolt calls with its usual arguments; the bot's parts
reach it through ``context`` (see :mod:`handlers.context`)."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.runtime import Runtime
from handlers import actions, commands, events, options, views
from handlers.context import label_logs, provide_runtime


def register(app: AsyncApp, runtime: Runtime) -> None:
    label_logs(app)
    provide_runtime(app, runtime)
    commands.register(app)
    views.register(app)
    actions.register(app)
    options.register(app)
    events.register(app)
