"""A manager types in the card-type select of a large catalog: answer the matching cards."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.runtime import Runtime
from bot.slack.ids import INPUT_ACTION
from bot.slack.modals import card_options, matching_products


class _Suggestion(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    value: str = ""


def register(app: AsyncApp, deps: Runtime) -> None:
    @app.options({"block_id": "card", "action_id": INPUT_ACTION})
    async def suggest_card_types(ack: AsyncAck, body: dict[str, object]) -> None:
        query = _Suggestion.model_validate(body).value
        products = matching_products(await deps.catalog.products(), query)
        await ack(options=card_options(products))
