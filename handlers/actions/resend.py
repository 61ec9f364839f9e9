"""The recipient clicks "Send it to me again" on their delivery DM."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.slack.ids import RESEND_ACTION
from handlers.actions.decision import decide_or_refuse
from handlers.context import runtime_of
from handlers.payloads import BlockActions


async def resend_card(ack: AsyncAck, body: dict[str, object], context: AsyncBoltContext) -> None:
    await ack()
    runtime = runtime_of(context)
    click = BlockActions.model_validate(body)
    answer = await decide_or_refuse(runtime, click, runtime.redelivery.ask_for_recipient)
    if answer is not None:
        await runtime.rewards.replies.tell(click.channel_id, click.user.id, answer)


def register(app: AsyncApp) -> None:
    app.action(RESEND_ACTION)(resend_card)
