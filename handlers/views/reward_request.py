"""The reward modal is submitted: validate inline and store; the announcement is a queued job."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.errors import InvalidRequest
from bot.rewards.draft import RewardDraft
from bot.slack.ids import (
    AMOUNT_BLOCK,
    CARD_BLOCK,
    DELIVER_AT_BLOCK,
    FIELD_BLOCKS,
    MESSAGE_BLOCK,
    MORE_RECIPIENTS_BLOCK,
    RECIPIENT_BLOCK,
    REWARD_MODAL,
    RewardModalMetadata,
    amount_block,
)
from handlers.context import runtime_of
from handlers.payloads import ViewSubmission


async def submit_reward_request(
    ack: AsyncAck, body: dict[str, object], context: AsyncBoltContext
) -> None:
    intake = runtime_of(context).rewards.intake
    submission = ViewSubmission.model_validate(body)
    try:
        batch, is_new = await intake.request_reward(_draft_of(submission))
    except InvalidRequest as invalid:
        await ack(response_action="errors", errors=_errors_by_block(invalid))
        return
    # Storing queued the announcement (summary, thread, approvers' cards); a resubmission
    # of the same modal found the stored request and queued nothing.
    await ack()
    if is_new:
        await intake.confirm_submitted(batch)


def _draft_of(submission: ViewSubmission) -> RewardDraft:
    metadata = RewardModalMetadata.model_validate_json(submission.view.private_metadata)
    recipient, card = submission.input(RECIPIENT_BLOCK), submission.input(CARD_BLOCK)
    amount, message = submission.input(AMOUNT_BLOCK), submission.input(MESSAGE_BLOCK)
    deliver_at = submission.input(DELIVER_AT_BLOCK)
    more = submission.input(MORE_RECIPIENTS_BLOCK)
    more_ids = tuple(more.selected_users or ()) if more else ()
    # Shown for the people picked when the form was last redrawn; filled ones only.
    own = {u: submission.input(amount_block(u)) for u in more_ids}
    return RewardDraft(
        requester_id=submission.user.id,
        origin_channel_id=metadata.channel_id,
        submission_key=submission.view.id,
        recipient_id=recipient.selected_user if recipient else None,
        product_key=card.selected_option.value if card and card.selected_option else None,
        amount_text=amount.value if amount else None,
        message=message.value if message else None,
        deliver_at=deliver_at.selected_date_time if deliver_at else None,
        more_recipient_ids=more_ids,
        amounts_for={u: field.value for u, field in own.items() if field and field.value},
    )


def _errors_by_block(invalid: InvalidRequest) -> dict[str, str]:
    """The refusal as Slack shows it: each reason under the block of its field."""
    errors = {FIELD_BLOCKS[field]: reason for field, reason in invalid.field_errors.items()}
    return errors | {amount_block(u): reason for u, reason in invalid.amount_errors.items()}


def register(app: AsyncApp) -> None:
    app.view(REWARD_MODAL)(submit_reward_request)
