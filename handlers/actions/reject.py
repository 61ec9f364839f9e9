"""An approver clicks Reject: ask for an optional reason in a modal."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.runtime import Runtime
from bot.slack.ids import REJECT_ACTION
from bot.slack.modals import reject_modal
from handlers.actions.decision import decide_or_refuse
from handlers.payloads import BlockActions


def register(app: AsyncApp, deps: Runtime) -> None:
    @app.action(REJECT_ACTION)
    async def ask_rejection_reason(ack: AsyncAck, body: dict[str, object]) -> None:
        await ack()
        click = BlockActions.model_validate(body)
        # Only check here: the decision is made when the reason modal is submitted.
        request = await decide_or_refuse(deps, click, deps.rewards.decidable)
        if request is not None:
            await deps.gateway.open_modal(click.trigger_id, reject_modal(request))
