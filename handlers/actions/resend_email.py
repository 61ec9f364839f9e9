"""An approver clicks "Email it to another address" on a delivered card: ask for the address."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.errors import NotAllowed, RequestNotFound
from bot.runtime import Runtime
from bot.slack_views import RESEND_EMAIL_ACTION, resend_email_modal
from handlers.actions.decision import clicked_request_id
from handlers.payloads import BlockActions


def register(app: AsyncApp, deps: Runtime) -> None:
    @app.action(RESEND_EMAIL_ACTION)
    async def ask_for_address(ack: AsyncAck, body: dict[str, object]) -> None:
        await ack()
        click = BlockActions.model_validate(body)
        request_id = clicked_request_id(click)
        try:
            if request_id is None:
                raise NotAllowed("That button is not valid.")
            # Only checked here: the card is resent when the address is submitted.
            request, _, _ = await deps.redelivery.emailable(request_id, click.user.id)
        except (NotAllowed, RequestNotFound) as refusal:
            await deps.rewards.tell(click.channel_id, click.user.id, str(refusal))
            return
        await deps.gateway.open_modal(click.trigger_id, resend_email_modal(request))
