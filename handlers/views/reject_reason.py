"""The reject modal is submitted: record the rejection with its optional reason."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.errors import AlreadyDecided, NotAllowed, RequestNotFound
from bot.slack.ids import REJECT_MODAL, RequestModalMetadata
from handlers.context import runtime_of
from handlers.payloads import ViewSubmission


async def submit_rejection(
    ack: AsyncAck, body: dict[str, object], context: AsyncBoltContext
) -> None:
    submission = ViewSubmission.model_validate(body)
    request_id = RequestModalMetadata.model_validate_json(
        submission.view.private_metadata
    ).request_id
    reason = submission.input("reason")
    try:
        await runtime_of(context).rewards.decisions.reject(
            request_id, submission.user.id, reason.value if reason else None
        )
    except (NotAllowed, AlreadyDecided, RequestNotFound) as refusal:
        await ack(response_action="errors", errors={"reason": str(refusal)})
        return
    await ack()


def register(app: AsyncApp) -> None:
    app.view(REJECT_MODAL)(submit_rejection)
