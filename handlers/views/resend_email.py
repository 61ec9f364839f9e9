"""The resend-by-email modal is submitted: resend to that address, or propose it to the
recipient (see :mod:`bot.jobs.resend`)."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.errors import NotAllowed, RequestNotFound
from bot.slack.ids import RESEND_EMAIL_MODAL, RequestModalMetadata
from handlers.context import runtime_of
from handlers.payloads import ViewSubmission


async def submit_address(ack: AsyncAck, body: dict[str, object], context: AsyncBoltContext) -> None:
    submission = ViewSubmission.model_validate(body)
    request_id = RequestModalMetadata.model_validate_json(
        submission.view.private_metadata
    ).request_id
    field = submission.input("email")
    try:
        # Checks and queues in the database only, so Slack is answered in time with the
        # field's error if there is one; the job asks the recipient and tells the approver.
        await runtime_of(context).redelivery.ask_for_email(
            request_id, submission.user.id, (field.value if field else None) or ""
        )
    except (NotAllowed, RequestNotFound) as refusal:
        await ack(response_action="errors", errors={"email": str(refusal)})
        return
    await ack()


def register(app: AsyncApp) -> None:
    app.view(RESEND_EMAIL_MODAL)(submit_address)
