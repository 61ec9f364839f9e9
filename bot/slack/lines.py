"""One-line mrkdwn descriptions of requests: what each is and where it stands.

Shared by the channel messages, the approval cards, the modals, the App Home and the reports,
so a request reads the same wherever it is shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from bot.domain import AWAITING_DECISION, RewardRequest, Status, is_scheduled
from bot.slack.text import escape, when
from bot.store import SYSTEM_ACTOR, Event

STATUS_LINES = {
    Status.PENDING_APPROVAL: ":hourglass_flowing_sand: Waiting for approval",
    Status.AWAITING_SECOND_APPROVAL: ":hourglass_flowing_sand: Waiting for a second approval",
    Status.APPROVED: ":white_check_mark: Approved: ordering the gift card",
    Status.ORDERING: ":package: Approved: ordering the gift card",
    Status.FULFILLED: ":gift: Delivered privately to the recipient",
    Status.REJECTED: ":no_entry_sign: Rejected",
    Status.FAILED: ":x: Failed: no gift card was delivered",
    Status.NEEDS_REVIEW: ":warning: Needs review: the order's outcome must be checked by hand",
    Status.RESOLVED: ":ballot_box_with_check: Resolved by hand after review",
    Status.CANCELLED: ":heavy_multiplication_x: Cancelled by the requester",
    Status.EXPIRED: ":alarm_clock: Expired: nobody decided it in time",
}

_NEXT_STEPS = {
    Status.PENDING_APPROVAL: "Next: an approver approves or rejects it. The requester can "
    "cancel it from its thread until then.",
    Status.AWAITING_SECOND_APPROVAL: "Next: a second approver approves or rejects it.",
    Status.APPROVED: "Next: the gift card is ordered and sent privately to the recipient.",
    Status.ORDERING: "Next: the gift card is sent privately to the recipient once the "
    "provider has issued it.",
    Status.NEEDS_REVIEW: "Next: an approver checks with the provider and decides on its card.",
    Status.FULFILLED: "Nothing more to do: the recipient has their card.",
    Status.REJECTED: "Nothing more will happen. The requester can ask again with /reward.",
    Status.FAILED: "Nothing was delivered. The requester can ask again with /reward.",
    Status.RESOLVED: "Nothing more will happen: it was settled by hand.",
    Status.CANCELLED: "Nothing more will happen: no card will be sent.",
    Status.EXPIRED: "Nothing more will happen. The requester can ask again with /reward.",
}

# Audit events that do not change a request's status, for people.
_EVENT_LINES = {
    "reminder": ":bell: Approvers reminded",
    "order_placed": ":package: Order placed with the provider",
    "delivery_started": ":envelope: Delivery to the recipient started",
    "resend_requested": ":repeat: Asked to send the card again",
    "resent": ":repeat: Card sent again",
    "email_change_requested": ":email: Another email address proposed",
    "email_change_confirmed": ":white_check_mark: Email address confirmed",
    "email_change_declined": ":no_entry: Email address refused by the recipient",
    "email_change_expired": ":hourglass: Email address not confirmed in time",
    "email_change_withdrawn": ":warning: Recipient could not be asked to confirm",
}


def request_headline(request: RewardRequest) -> str:
    return (
        f"*Reward #{request.id}*: <@{request.requester_id}> → <@{request.recipient_id}>, "
        f"*{request.face_value}* {escape(request.product_name)}"
    )


def batch_headline(batch: Sequence[RewardRequest]) -> str:
    first = batch[0]
    # Every recipient is on their own line below; the headline names the first few.
    people = ", ".join(f"<@{m.recipient_id}>" for m in batch[:5])
    if len(batch) > 5:
        people += f" and {len(batch) - 5} more"
    amount = f"{first.face_value} each" if same_amount(batch) else "different amounts"
    return (
        f"*Rewards #{first.id}-#{batch[-1].id}*: <@{first.requester_id}> → {people}, "
        f"*{amount}* {escape(first.product_name)}"
    )


def same_amount(batch: Sequence[RewardRequest]) -> bool:
    """Whether every request of ``batch`` is for the same face value."""
    return len({m.face_value for m in batch}) == 1


def card_phrase(request: RewardRequest) -> str:
    """The card of ``request`` inside a sentence: ``25.00 GBP Sandbox Books``."""
    return f"{request.face_value} {escape(request.product_name)}"


def subject(request: RewardRequest, batch: Sequence[RewardRequest]) -> str:
    """``request`` (or its ``batch``, if more than one) named inside a sentence."""
    if len(batch) < 2:
        return f"reward #{request.id}: {card_phrase(request)} for <@{request.recipient_id}>"
    amount = f"{request.face_value} " if same_amount(batch) else ""
    each = " each" if same_amount(batch) else ""
    return (
        f"rewards #{batch[0].id}-#{batch[-1].id}: {amount}"
        f"{escape(request.product_name)}{each} for {len(batch)} people"
    )


def status_line(request: RewardRequest) -> str:
    line = STATUS_LINES[request.status]
    if is_scheduled(request, datetime.now(UTC)):
        assert request.deliver_at is not None
        line += f" · :calendar: Delivery scheduled for {when(request.deliver_at)}"
    if request.first_approved_by:
        line += f" · First approval by <@{request.first_approved_by}>"
    if request.decided_by and request.status not in AWAITING_DECISION:
        verb = "Rejected" if request.status is Status.REJECTED else "Approved"
        line += f" · {verb} by <@{request.decided_by}>"
    if request.status is Status.REJECTED and request.decision_reason:
        line += f"\nReason: {escape(request.decision_reason)}"
    if request.status in (Status.FAILED, Status.NEEDS_REVIEW) and request.failure_reason:
        line += f"\n{escape(request.failure_reason)}"
    return line


def request_line(request: RewardRequest) -> str:
    """One line per request in lists: number, who, what, where it stands."""
    return (
        f"*#{request.id}* <@{request.recipient_id}> · {request.face_value} "
        f"{escape(request.product_name)} · {STATUS_LINES[request.status]}"
    )


def next_step(request: RewardRequest) -> str:
    return _NEXT_STEPS[request.status]


def event_line(event: Event) -> str:
    """One audit event, for people: when, what, who."""
    at = f"{event.at:%Y-%m-%d %H:%M} UTC"
    who = "rewardbot" if event.actor == SYSTEM_ACTOR else f"<@{event.actor}>"
    if event.kind == "created":
        what = ":memo: Requested"
    elif event.to_status is not None:
        what = STATUS_LINES[event.to_status]
    else:
        what = _EVENT_LINES.get(event.kind, event.kind.replace("_", " "))
    return f"{at} · {what} · {who}"
