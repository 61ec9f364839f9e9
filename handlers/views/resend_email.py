"""The resend-by-email modal is submitted: have the provider email the card there."""

from __future__ import annotations

import logging

from pydantic import BaseModel
from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.errors import NotAllowed, RequestNotFound
from bot.redelivery import looks_like_email
from bot.runtime import Runtime
from bot.slack_gateway import SLACK_FAILURES
from bot.slack_views import RESEND_EMAIL_MODAL
from handlers.payloads import ViewSubmission

log = logging.getLogger(__name__)


class _ResendMetadata(BaseModel):
    request_id: int


def register(app: AsyncApp, deps: Runtime) -> None:
    @app.view(RESEND_EMAIL_MODAL)
    async def submit_address(ack: AsyncAck, body: dict[str, object]) -> None:
        submission = ViewSubmission.model_validate(body)
        request_id = _ResendMetadata.model_validate_json(
            submission.view.private_metadata
        ).request_id
        field = submission.input("email")
        address = (field.value if field else None) or ""
        if not looks_like_email(address.strip()):
            await ack(response_action="errors", errors={"email": "Enter one email address."})
            return
        try:
            answer = await deps.redelivery.to_email(request_id, submission.user.id, address.strip())
        except (NotAllowed, RequestNotFound) as refusal:
            await ack(response_action="errors", errors={"email": str(refusal)})
            return
        await ack()
        try:
            await deps.gateway.dm(submission.user.id, answer)
        except SLACK_FAILURES as exc:
            # The recipient and the requester were told, and the audit trail has it.
            log.warning("could not tell %s how the resend went: %r", submission.user.id, exc)
