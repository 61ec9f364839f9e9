"""An approver settles a request that needs review (order again, check again, resolve) or
retries one that failed."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.runtime import Runtime
from bot.slack.ids import CHECK_AGAIN_ACTION, ORDER_AGAIN_ACTION, RESOLVE_ACTION, RETRY_ACTION
from handlers.actions.decision import decide_or_refuse
from handlers.payloads import BlockActions


def register(app: AsyncApp, deps: Runtime) -> None:
    @app.action(ORDER_AGAIN_ACTION)
    async def order_again(ack: AsyncAck, body: dict[str, object]) -> None:
        await ack()
        await decide_or_refuse(deps, BlockActions.model_validate(body), deps.rewards.order_again)

    @app.action(CHECK_AGAIN_ACTION)
    async def check_again(ack: AsyncAck, body: dict[str, object]) -> None:
        await ack()
        await decide_or_refuse(deps, BlockActions.model_validate(body), deps.rewards.check_again)

    @app.action(RETRY_ACTION)
    async def retry_failed(ack: AsyncAck, body: dict[str, object]) -> None:
        await ack()
        await decide_or_refuse(deps, BlockActions.model_validate(body), deps.rewards.retry)

    @app.action(RESOLVE_ACTION)
    async def mark_resolved(ack: AsyncAck, body: dict[str, object]) -> None:
        await ack()
        await decide_or_refuse(deps, BlockActions.model_validate(body), deps.rewards.resolve)
