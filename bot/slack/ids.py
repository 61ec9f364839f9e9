"""The names Slack sends back to us: action ids, block ids, modal callback ids, and the metadata
a modal carries to its submission.

The views set these and the listeners in ``handlers/`` match on them, so each is spelled once,
here.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

from bot.domain import FormField

# Modals, by callback id.
REWARD_MODAL = "reward_request"
REJECT_MODAL = "reject_reason"
RESEND_EMAIL_MODAL = "resend_email"

# Buttons, by action id.
APPROVE_ACTION = "approve_request"
REJECT_ACTION = "reject_request"
REDEEM_ACTION = "redeem"
ORDER_AGAIN_ACTION = "order_again"
CHECK_AGAIN_ACTION = "check_again"
RESOLVE_ACTION = "resolve_review"
CANCEL_ACTION = "cancel_request"
RETRY_ACTION = "retry_failed"
RESEND_ACTION = "resend_card"
RESEND_EMAIL_ACTION = "resend_to_email"
CONFIRM_EMAIL_ACTION = "confirm_email"
DECLINE_EMAIL_ACTION = "decline_email"

# Every input in our modals uses this action_id; the block_id names the field.
INPUT_ACTION = "value"

# The modals' fields, by block id. A submission's values and the field errors we answer it with
# are keyed by these.
RECIPIENT_BLOCK = "recipient"
MORE_RECIPIENTS_BLOCK = "more_recipients"
CARD_BLOCK = "card"
AMOUNT_BLOCK = "amount"
MESSAGE_BLOCK = "message"
DELIVER_AT_BLOCK = "deliver_at"
REASON_BLOCK = "reason"
EMAIL_BLOCK = "email"


def amount_block(user_id: str) -> str:
    """The block id of one person's own amount in the reward modal."""
    return f"amount_for_{user_id}"


# Where the reward modal shows each field of the form (and so the errors about it).
FIELD_BLOCKS: Mapping[FormField, str] = {
    FormField.RECIPIENT: RECIPIENT_BLOCK,
    FormField.MORE_RECIPIENTS: MORE_RECIPIENTS_BLOCK,
    FormField.CARD: CARD_BLOCK,
    FormField.AMOUNT: AMOUNT_BLOCK,
    FormField.MESSAGE: MESSAGE_BLOCK,
    FormField.DELIVER_AT: DELIVER_AT_BLOCK,
}


class RewardModalMetadata(BaseModel):
    """What the reward modal carries from the slash command to its submission."""

    channel_id: str
    # The requester's Slack time zone, named by the form (kept for when the form is redrawn).
    timezone: str | None = None


class RequestModalMetadata(BaseModel):
    """What a modal about one request carries to its submission."""

    request_id: int
