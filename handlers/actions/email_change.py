"""The recipient confirms, or refuses, an address an approver asked to email their card to."""

from __future__ import annotations

import re

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.runtime import Runtime
from bot.slack_views import CONFIRM_EMAIL_ACTION, DECLINE_EMAIL_ACTION
from handlers.actions.decision import decide_or_refuse
from handlers.payloads import BlockActions

_EITHER = re.compile(f"^({CONFIRM_EMAIL_ACTION}|{DECLINE_EMAIL_ACTION})$")


async def decide_address(ack: AsyncAck, body: dict[str, object], deps: Runtime) -> None:
    await ack()
    click = BlockActions.model_validate(body)
    confirmed = click.actions[0].action_id == CONFIRM_EMAIL_ACTION
    decide = deps.redelivery.confirm_email if confirmed else deps.redelivery.decline_email
    # The button's value names the change; who may decide it is read from stored state.
    answer = await decide_or_refuse(deps, click, decide)
    if answer is not None:
        await deps.rewards.tell(click.channel_id, click.user.id, answer)


def register(app: AsyncApp, deps: Runtime) -> None:
    @app.action(_EITHER)
    async def address_decided(ack: AsyncAck, body: dict[str, object]) -> None:
        await decide_address(ack, body, deps)
