"""An approver clicks "Email it to another address" on a delivered card: ask for the address."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.slack.ids import RESEND_EMAIL_ACTION
from bot.slack.modals import resend_email_modal
from handlers.actions.decision import decide_or_refuse
from handlers.context import runtime_of
from handlers.payloads import BlockActions


async def ask_for_address(
    ack: AsyncAck, body: dict[str, object], context: AsyncBoltContext
) -> None:
    await ack()
    runtime = runtime_of(context)
    click = BlockActions.model_validate(body)
    # Only checked here: the card is resent when the address is submitted.
    emailable = await decide_or_refuse(runtime, click, runtime.redelivery.emailable)
    if emailable is not None:
        request, _, _ = emailable
        await runtime.gateway.open_modal(click.trigger_id, resend_email_modal(request))


def register(app: AsyncApp) -> None:
    app.action(RESEND_EMAIL_ACTION)(ask_for_address)
