"""``/reward [@someone] [amount] [for what]``: open the reward modal, prefilled.

Also ``/reward help``, ``/reward status [number]`` (the asker's requests, or one request's
history) and ``/reward report`` (this month's spend per team, approvers only). Their answers
are the command's immediate response, which only the asker sees."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond

from bot.domain import looks_like_email
from bot.errors import NotAllowed, RequestNotFound
from bot.reports import budget_report, status_report
from bot.runtime import Runtime
from bot.slack.gateway import SLACK_FAILURES, UnknownUser
from bot.slack.ids import RewardModalMetadata
from bot.slack.messages import HELP_TEXT
from bot.slack.modals import RewardPrefill, reward_modal
from handlers.context import runtime_of
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


async def reward_command(
    ack: AsyncAck, respond: AsyncRespond, body: dict[str, Any], context: AsyncBoltContext
) -> None:
    command = SlashCommand.model_validate(body)
    word, _, argument = command.text.strip().partition(" ")
    # Acknowledged before anything that may call Slack (user groups), which could be slow.
    if word.casefold() == "help":
        await ack(HELP_TEXT)
        return
    await ack()
    runtime = runtime_of(context)
    match word.casefold():
        case "status":
            await respond(
                await status_report(runtime.store, runtime.policy, command.user_id, argument)
            )
            return
        case "resend":
            await respond(await _resend_to_email(runtime, command.user_id, argument))
            return
        case "report" if not argument.strip():
            await respond(await budget_report(runtime.store, runtime.policy, command.user_id))
            return
    await _open_reward_modal(runtime, command, respond)


async def _open_reward_modal(
    runtime: Runtime, command: SlashCommand, respond: AsyncRespond
) -> None:
    """Open the reward modal, prefilled from the command, unless it could not lead anywhere."""
    if not await runtime.rewards.intake.can_be_approved(command.user_id):
        await respond(
            "No approver other than you is configured, so a reward you request could "
            "never be approved. Ask your Slack admin to add one to the approval policy."
        )
        return
    products = await runtime.catalog.products()
    if not products:
        await respond(
            "No gift cards can be ordered right now: the providers' "
            "catalogs are unavailable. Please try again in a few minutes."
        )
        return
    # The picker shows times in the user's Slack time zone; the form says which it is.
    try:
        timezone = (await runtime.gateway.user(command.user_id)).tz
    except (*SLACK_FAILURES, UnknownUser):
        timezone = None
    metadata = RewardModalMetadata(channel_id=command.channel_id, timezone=timezone)
    view = reward_modal(products, parse_prefill(command.text), metadata)
    await runtime.gateway.open_modal(command.trigger_id, view)


def register(app: AsyncApp) -> None:
    app.command("/reward")(reward_command)


# Slack turns a typed address into <mailto:jane@example.com|jane@example.com>.
_MAILTO = re.compile(r"<mailto:([^|>]+)(?:\|[^>]*)?>")


async def _resend_to_email(runtime: Runtime, user_id: str, argument: str) -> str:
    """``/reward resend 12 jane@example.com``: an approver corrects the address a delivered
    card is emailed to (the recipient confirms it first, see :mod:`bot.jobs.resend`)."""
    number, _, address = argument.strip().removeprefix("#").partition(" ")
    address = _MAILTO.sub(r"\1", address.strip())
    if not number.isdecimal() or len(number) > 18 or not looks_like_email(address):
        return "Use `/reward resend <number> <email>`, like `/reward resend 12 jane@example.com`."
    try:
        return await runtime.redelivery.ask_for_email(int(number), user_id, address)
    except (NotAllowed, RequestNotFound) as refusal:
        return str(refusal)
