"""An approver settles a request that needs review (order again, check again, resolve) or
retries one that failed: the buttons of one card, so their listeners live together."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.slack.ids import CHECK_AGAIN_ACTION, ORDER_AGAIN_ACTION, RESOLVE_ACTION, RETRY_ACTION
from handlers.actions.decision import decide_or_refuse
from handlers.context import runtime_of
from handlers.payloads import BlockActions


async def order_again(ack: AsyncAck, body: dict[str, object], context: AsyncBoltContext) -> None:
    await ack()
    runtime = runtime_of(context)
    click = BlockActions.model_validate(body)
    await decide_or_refuse(runtime, click, runtime.rewards.review.order_again)


async def check_again(ack: AsyncAck, body: dict[str, object], context: AsyncBoltContext) -> None:
    await ack()
    runtime = runtime_of(context)
    click = BlockActions.model_validate(body)
    await decide_or_refuse(runtime, click, runtime.rewards.review.check_again)


async def retry_failed(ack: AsyncAck, body: dict[str, object], context: AsyncBoltContext) -> None:
    await ack()
    runtime = runtime_of(context)
    click = BlockActions.model_validate(body)
    await decide_or_refuse(runtime, click, runtime.rewards.review.retry)


async def mark_resolved(ack: AsyncAck, body: dict[str, object], context: AsyncBoltContext) -> None:
    await ack()
    runtime = runtime_of(context)
    click = BlockActions.model_validate(body)
    await decide_or_refuse(runtime, click, runtime.rewards.review.resolve)


def register(app: AsyncApp) -> None:
    app.action(ORDER_AGAIN_ACTION)(order_again)
    app.action(CHECK_AGAIN_ACTION)(check_again)
    app.action(RETRY_ACTION)(retry_failed)
    app.action(RESOLVE_ACTION)(mark_resolved)
