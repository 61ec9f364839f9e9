"""An approver clicks Approve on an approval card."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.runtime import Runtime
from bot.slack.ids import APPROVE_ACTION
from handlers.actions.decision import decide_or_refuse
from handlers.payloads import BlockActions


def register(app: AsyncApp, deps: Runtime) -> None:
    @app.action(APPROVE_ACTION)
    async def approve_request(ack: AsyncAck, body: dict[str, object]) -> None:
        await ack()
        # The approval queues its announcement and the order; the job runner does the rest.
        await decide_or_refuse(deps, BlockActions.model_validate(body), deps.rewards.approve)
