"""The resend-by-email modal is submitted: queue the provider's resend to that address."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.domain import looks_like_email
from bot.errors import NotAllowed, RequestNotFound
from bot.runtime import Runtime
from bot.slack_views import RESEND_EMAIL_MODAL, RequestModalMetadata
from handlers.payloads import ViewSubmission


def register(app: AsyncApp, deps: Runtime) -> None:
    @app.view(RESEND_EMAIL_MODAL)
    async def submit_address(ack: AsyncAck, body: dict[str, object]) -> None:
        submission = ViewSubmission.model_validate(body)
        request_id = RequestModalMetadata.model_validate_json(
            submission.view.private_metadata
        ).request_id
        field = submission.input("email")
        address = ((field.value if field else None) or "").strip()
        if not looks_like_email(address):
            await ack(response_action="errors", errors={"email": "Enter one email address."})
            return
        try:
            # Only checks and queues: the resend job DMs the approver how it went.
            await deps.redelivery.ask_for_email(request_id, submission.user.id, address)
        except (NotAllowed, RequestNotFound) as refusal:
            await ack(response_action="errors", errors={"email": str(refusal)})
            return
        await ack()
