"""An approver clicks Reject: ask for an optional reason in a modal."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.slack.ids import REJECT_ACTION
from bot.slack.modals import reject_modal
from handlers.actions.decision import decide_or_refuse
from handlers.context import runtime_of
from handlers.payloads import BlockActions


async def ask_rejection_reason(
    ack: AsyncAck, body: dict[str, object], context: AsyncBoltContext
) -> None:
    await ack()
    runtime = runtime_of(context)
    click = BlockActions.model_validate(body)
    # Only check here: the decision is made when the reason modal is submitted.
    request = await decide_or_refuse(runtime, click, runtime.rewards.decisions.decidable)
    if request is not None:
        await runtime.gateway.open_modal(click.trigger_id, reject_modal(request))


def register(app: AsyncApp) -> None:
    app.action(REJECT_ACTION)(ask_rejection_reason)
