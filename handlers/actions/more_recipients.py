"""The requester picks people under *Also reward*: redraw the form with an amount each."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.slack.gateway import SLACK_FAILURES, UnknownUser
from bot.slack.ids import INPUT_ACTION, MORE_RECIPIENTS_BLOCK, RewardModalMetadata
from bot.slack.modals import RewardPrefill, reward_modal
from handlers.context import runtime_of
from handlers.payloads import ViewInputChange

log = logging.getLogger(__name__)


async def show_an_amount_each(
    ack: AsyncAck, body: dict[str, object], context: AsyncBoltContext
) -> None:
    await ack()
    runtime = runtime_of(context)
    change = ViewInputChange.model_validate(body)
    picked = (change.actions[0].selected_users if change.actions else None) or []
    people = []
    for user_id in dict.fromkeys(picked):
        try:
            name = (await runtime.gateway.user(user_id)).display_name
        except (*SLACK_FAILURES, UnknownUser):
            name = "the person picked"  # the form still works; only the label is vaguer
        people.append((user_id, name))
    metadata = RewardModalMetadata.model_validate_json(change.view.private_metadata)
    # No prefill: Slack keeps what the requester already entered in the same fields.
    view = reward_modal(await runtime.catalog.products(), RewardPrefill(), metadata, people)
    try:
        await runtime.gateway.update_modal(change.view.id, change.view.hash, view)
    except SLACK_FAILURES as exc:
        # hash_conflict: the form changed again meanwhile, and that change redraws it.
        log.info("reward form not redrawn: %r", exc)


def register(app: AsyncApp) -> None:
    app.action({"block_id": MORE_RECIPIENTS_BLOCK, "action_id": INPUT_ACTION})(show_an_amount_each)
