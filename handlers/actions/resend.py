"""The recipient clicks "Send it to me again" on their delivery DM."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.errors import NotAllowed, RequestNotFound
from bot.runtime import Runtime
from bot.slack_views import RESEND_ACTION
from handlers.actions.decision import clicked_request_id
from handlers.payloads import BlockActions


def register(app: AsyncApp, deps: Runtime) -> None:
    @app.action(RESEND_ACTION)
    async def resend_card(ack: AsyncAck, body: dict[str, object]) -> None:
        await ack()
        click = BlockActions.model_validate(body)
        request_id = clicked_request_id(click)
        if request_id is None:
            answer = "That button is not valid."
        else:
            try:
                answer = await deps.redelivery.ask_for_recipient(request_id, click.user.id)
            except (NotAllowed, RequestNotFound) as refusal:
                answer = str(refusal)
        await deps.rewards.tell(click.channel_id, click.user.id, answer)
