"""The recipient clicks "Send it to me again" on their delivery DM."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.runtime import Runtime
from bot.slack.ids import RESEND_ACTION
from handlers.actions.decision import decide_or_refuse
from handlers.payloads import BlockActions


def register(app: AsyncApp, deps: Runtime) -> None:
    @app.action(RESEND_ACTION)
    async def resend_card(ack: AsyncAck, body: dict[str, object]) -> None:
        await ack()
        click = BlockActions.model_validate(body)
        answer = await decide_or_refuse(deps, click, deps.redelivery.ask_for_recipient)
        if answer is not None:
            await deps.rewards.tell(click.channel_id, click.user.id, answer)
