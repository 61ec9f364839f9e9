"""A manager types in the card-type select of a large catalog: answer the matching cards."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.slack.ids import INPUT_ACTION
from bot.slack.modals import card_options, matching_products
from handlers.context import runtime_of


class _Suggestion(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    value: str = ""


async def suggest_card_types(
    ack: AsyncAck, body: dict[str, object], context: AsyncBoltContext
) -> None:
    query = _Suggestion.model_validate(body).value
    products = matching_products(await runtime_of(context).catalog.products(), query)
    await ack(options=card_options(products))


def register(app: AsyncApp) -> None:
    app.options({"block_id": "card", "action_id": INPUT_ACTION})(suggest_card_types)
