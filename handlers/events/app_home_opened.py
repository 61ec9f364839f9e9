"""A user opens rewardbot's App Home: publish their tab, rendered from stored state."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.runtime import Runtime
from handlers.payloads import AppHomeOpened


def register(app: AsyncApp, deps: Runtime) -> None:
    @app.event("app_home_opened")
    async def show_home(event: dict[str, Any]) -> None:
        # Bolt acknowledges events itself; this runs after.
        opened = AppHomeOpened.model_validate(event)
        if opened.tab == "home":
            await deps.home.publish(opened.user)
