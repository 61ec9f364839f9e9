"""A user opens rewardbot's App Home: publish their tab, rendered from stored state."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext

from handlers.context import runtime_of
from handlers.payloads import AppHomeOpened


async def show_home(event: dict[str, Any], context: AsyncBoltContext) -> None:
    # Bolt acknowledges events itself; this runs after.
    opened = AppHomeOpened.model_validate(event)
    if opened.tab == "home":
        await runtime_of(context).home.publish(opened.user)


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(show_home)
