"""An approver clicks Approve on an approval card."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.errors import AlreadyDecided, NotAllowed, RequestNotFound
from bot.runtime import Runtime
from bot.slack_views import APPROVE_ACTION
from handlers.actions.decision import clicked_request_id
from handlers.payloads import BlockActions


def register(app: AsyncApp, deps: Runtime) -> None:
    @app.action(APPROVE_ACTION)
    async def approve_request(ack: AsyncAck, body: dict[str, object]) -> None:
        await ack()
        click = BlockActions.model_validate(body)
        request_id = clicked_request_id(click)
        if request_id is None:
            await deps.rewards.tell(click.channel_id, click.user.id, "That button is not valid.")
            return
        try:
            request = await deps.rewards.approve(request_id, click.user.id)
        except (NotAllowed, AlreadyDecided, RequestNotFound) as refusal:
            await deps.rewards.tell(click.channel_id, click.user.id, str(refusal))
            return
        await deps.rewards.after_decision(request)
