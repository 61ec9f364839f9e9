"""An approver clicks "Email it to another address" on a delivered card: ask for the address."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.runtime import Runtime
from bot.slack.ids import RESEND_EMAIL_ACTION
from bot.slack.modals import resend_email_modal
from handlers.actions.decision import decide_or_refuse
from handlers.payloads import BlockActions


def register(app: AsyncApp, deps: Runtime) -> None:
    @app.action(RESEND_EMAIL_ACTION)
    async def ask_for_address(ack: AsyncAck, body: dict[str, object]) -> None:
        await ack()
        click = BlockActions.model_validate(body)
        # Only checked here: the card is resent when the address is submitted.
        emailable = await decide_or_refuse(deps, click, deps.redelivery.emailable)
        if emailable is not None:
            request, _, _ = emailable
            await deps.gateway.open_modal(click.trigger_id, resend_email_modal(request))
