"""The requester clicks Cancel request on their request's summary, at the head of its thread."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.runtime import Runtime
from bot.slack.ids import CANCEL_ACTION
from handlers.actions.decision import decide_or_refuse
from handlers.payloads import BlockActions


def register(app: AsyncApp, deps: Runtime) -> None:
    @app.action(CANCEL_ACTION)
    async def cancel_request(ack: AsyncAck, body: dict[str, object]) -> None:
        await ack()
        # The cancellation queues its announcement (summary, cards and thread updated).
        await decide_or_refuse(deps, BlockActions.model_validate(body), deps.rewards.cancel)
