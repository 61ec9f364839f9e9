"""An approver clicks Approve on an approval card."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.slack.ids import APPROVE_ACTION
from handlers.actions.decision import decide_or_refuse
from handlers.context import runtime_of
from handlers.payloads import BlockActions


async def approve_request(
    ack: AsyncAck, body: dict[str, object], context: AsyncBoltContext
) -> None:
    await ack()
    runtime = runtime_of(context)
    # The approval queues its announcement and the order; the job runner does the rest.
    click = BlockActions.model_validate(body)
    await decide_or_refuse(runtime, click, runtime.rewards.decisions.approve)


def register(app: AsyncApp) -> None:
    app.action(APPROVE_ACTION)(approve_request)
