"""The recipient clicks *Confirm, it is mine* or *Not my address* on the DM asking them to
confirm an address an approver proposed for their card."""

from __future__ import annotations

import re

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.slack.ids import CONFIRM_EMAIL_ACTION, DECLINE_EMAIL_ACTION
from handlers.actions.decision import decide_or_refuse
from handlers.context import runtime_of
from handlers.payloads import BlockActions


async def decide_address(ack: AsyncAck, body: dict[str, object], context: AsyncBoltContext) -> None:
    await ack()
    runtime = runtime_of(context)
    click = BlockActions.model_validate(body)
    redelivery = runtime.redelivery
    confirmed = click.actions[0].action_id == CONFIRM_EMAIL_ACTION
    # The button's value names the change; whether this click may decide it is checked
    # against the stored change (its recipient only, while it waits, once).
    decide = redelivery.confirm_email if confirmed else redelivery.decline_email
    answer = await decide_or_refuse(runtime, click, decide)
    if answer is not None:
        await runtime.rewards.replies.tell(click.channel_id, click.user.id, answer)


def register(app: AsyncApp) -> None:
    app.action(re.compile(f"^({CONFIRM_EMAIL_ACTION}|{DECLINE_EMAIL_ACTION})$"))(decide_address)
