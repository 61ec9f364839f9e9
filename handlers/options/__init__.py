"""Options for external selects (typeahead)."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers.options import card_type


def register(app: AsyncApp) -> None:
    card_type.register(app)
