"""The requester clicks Cancel request on their request's summary, at the head of its thread."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.slack.ids import CANCEL_ACTION
from handlers.actions.decision import decide_or_refuse
from handlers.context import runtime_of
from handlers.payloads import BlockActions


async def cancel_request(ack: AsyncAck, body: dict[str, object], context: AsyncBoltContext) -> None:
    await ack()
    runtime = runtime_of(context)
    # The cancellation queues its announcement (summary, cards and thread updated).
    click = BlockActions.model_validate(body)
    await decide_or_refuse(runtime, click, runtime.rewards.cancellation.cancel)


def register(app: AsyncApp) -> None:
    app.action(CANCEL_ACTION)(cancel_request)
