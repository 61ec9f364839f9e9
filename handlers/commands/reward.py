"""``/reward [@someone] [amount] [for what]``: open the reward modal, prefilled.
``/reward report``: this month's spend per team against budget, for approvers only."""

from __future__ import annotations

import re

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.reports import budget_report
from bot.runtime import Runtime
from bot.slack_views import RewardModalMetadata, RewardPrefill, reward_modal
from handlers.payloads import SlashCommand

# With ``should_escape: true`` in the manifest, Slack sends mentions as <@U123|name>.
_MENTION = re.compile(r"\s*<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_AMOUNT = re.compile(r"\s*([£$€]?\d[\d,]*(?:\.\d+)?(?:\s*[A-Z]{3})?)(?=\s|$)")
_FOR = re.compile(r"^for\s+", re.IGNORECASE)


def parse_prefill(text: str) -> RewardPrefill:
    """Read ``<@U123|jane> 25 for shipping the release`` into recipient, amount and message."""
    rest = text
    recipient = None
    if mention := _MENTION.match(rest):
        recipient = mention.group(1)
        rest = rest[mention.end() :]
    amount = None
    if number := _AMOUNT.match(rest):
        amount = number.group(1)
        rest = rest[number.end() :]
    message = _FOR.sub("", rest.strip()) or None
    return RewardPrefill(recipient_id=recipient, amount=amount, message=message)


def register(app: AsyncApp, deps: Runtime) -> None:
    @app.command("/reward")
    async def open_reward_modal(ack: AsyncAck, body: dict[str, object]) -> None:
        command = SlashCommand.model_validate(body)
        if command.text.strip().casefold() == "report":
            await ack(await budget_report(deps.store, deps.policy, command.user_id))
            return
        if not await deps.rewards.can_be_approved(command.user_id):
            await ack(
                "No approver other than you is configured, so a reward you request could "
                "never be approved. Ask your Slack admin to add one to the approval policy."
            )
            return
        await ack()
        products = await deps.catalog.products()
        if not products:
            await deps.rewards.tell(
                command.channel_id,
                command.user_id,
                "No gift cards can be ordered right now: the providers' "
                "catalogs are unavailable. Please try again in a few minutes.",
            )
            return
        metadata = RewardModalMetadata(channel_id=command.channel_id)
        view = reward_modal(products, parse_prefill(command.text), metadata)
        await deps.gateway.open_modal(command.trigger_id, view)
