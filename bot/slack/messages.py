"""The bot's one-off messages: thread replies, what the requester and the approvers are told
privately, the recipient's delivery DM and address confirmation, and the help text.

The channel summary and the approvers' cards, redrawn as a request changes, are in
:mod:`bot.slack.cards`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bot.domain import RewardRequest, Status, is_scheduled
from bot.slack.blocks import Block, buttons, mrkdwn_context, mrkdwn_section, plain, sandbox_notice
from bot.slack.ids import CONFIRM_EMAIL_ACTION, DECLINE_EMAIL_ACTION, REDEEM_ACTION, RESEND_ACTION
from bot.slack.lines import STATUS_LINES, card_phrase, subject
from bot.slack.text import escape, quote, when
from bot.store import EmailChange
from providers.base import Redemption

HELP_TEXT = """*rewardbot* sends gift-card rewards, approved by a manager, delivered privately.
• `/reward` opens the reward form. Prefill it: `/reward @jane 25 for shipping the release`.
  After you submit, the request is posted here as a thread and your approver gets Approve /
  Reject buttons. You can cancel it from the thread until it is decided. Once approved, the card
  is ordered and sent to the recipient in a private message; the thread says when it arrives.
• `/reward status` lists your recent requests; `/reward status 12` shows request #12's history.
• `/reward report` (approvers) shows this month's spend per team against budget.
• `/reward resend 12 jane@example.com` (approvers) corrects the address a delivered card is
  emailed to (providers that email cards, such as Giftronaut): the recipient confirms it first.
• Lost your card? Click *Send it to me again* on the message that delivered it.
• `/reward help` shows this message. Everything these commands show is visible only to you."""


def thread_update(request: RewardRequest) -> str:
    """The thread reply for the request's latest status. Never contains the redemption link."""
    match request.status:
        case Status.PENDING_APPROVAL:
            return "Waiting for an approver. They have been sent the request privately."
        case Status.AWAITING_SECOND_APPROVAL:
            return (
                f"First approval by <@{request.first_approved_by}>. This reward is above the "
                "limit for one approver, so it waits for a second approval."
            )
        case Status.CANCELLED:
            return ":heavy_multiplication_x: Cancelled by the requester: no card will be sent."
        case Status.EXPIRED:
            return (
                ":alarm_clock: Expired: nobody approved or rejected it in time. Nothing was "
                "ordered; the requester can ask again with /reward."
            )
        case Status.APPROVED if is_scheduled(request, datetime.now(UTC)):
            assert request.deliver_at is not None
            return (
                f"Approved by <@{request.decided_by}>. :calendar: The {request.provider} card "
                f"will be delivered {when(request.deliver_at)}. Until shortly before then, the "
                "requester can cancel it here."
            )
        case Status.APPROVED | Status.ORDERING:
            return (
                f"Approved by <@{request.decided_by}>. Ordering the gift card from "
                f"{request.provider}…"
            )
        case Status.FULFILLED:
            return (
                f":gift: Delivered: <@{request.recipient_id}> has received their gift card "
                "in a private message."
            )
        case Status.REJECTED:
            reason = (
                f" Reason: {escape(request.decision_reason)}" if request.decision_reason else ""
            )
            return f":no_entry_sign: Rejected by <@{request.decided_by}>.{reason}"
        case Status.FAILED:
            return f":x: Failed: {escape(request.failure_reason or 'unknown error')}"
        case Status.NEEDS_REVIEW:
            return (
                f":warning: Needs review: {escape(request.failure_reason or 'outcome unknown')} "
                "Nothing more will be ordered until an approver checks with the provider and "
                "decides with the buttons on their card."
            )
        case Status.RESOLVED:
            return ":ballot_box_with_check: An approver marked this reward resolved by hand."


def submitted(batch: Sequence[RewardRequest], deciders: Sequence[str]) -> str:
    """The requester's private confirmation, the moment the modal closes."""
    request = batch[0]
    who = " or ".join(f"<@{a}>" for a in deciders) or "an approver"
    steps = (
        f"needs two approvals: first from {who}, then from a second approver"
        if request.approvals_required > 1
        else f"is waiting for approval from {who}"
    )
    delivery = (
        f"delivered privately to the recipient {when(request.deliver_at)}; you can cancel "
        "it from the thread until then"
        if request.deliver_at
        else "sent privately to the recipient"
    )
    what = (
        f"reward #{request.id} ({card_phrase(request)} for <@{request.recipient_id}>)"
        if len(batch) < 2
        else f"{subject(request, batch)}, decided together"
    )
    return (
        f":white_check_mark: Your {what} {steps}. Its thread "
        "shows every step, and you can cancel it there until it is decided. Once approved, "
        f"the card is {delivery}."
    )


def requester_update(request: RewardRequest, batch: Sequence[RewardRequest] = ()) -> str:
    """What the requester is told privately when their request settles; with ``batch``, of a
    change made to the whole batch at once."""
    whose = (
        f"Your {subject(request, batch)}"
        if len(batch) > 1
        else f"Your reward #{request.id} for <@{request.recipient_id}> ({request.face_value})"
    )
    match request.status:
        case Status.FULFILLED:
            return f"{whose} was delivered. Thank you for recognising them!"
        case Status.REJECTED:
            reason = (
                f" Reason: {escape(request.decision_reason)}" if request.decision_reason else ""
            )
            were = "were" if len(batch) > 1 else "was"
            return f"{whose} {were} rejected by <@{request.decided_by}>.{reason}"
        case Status.RESOLVED:
            return f"{whose} was settled by hand after a review."
        case Status.EXPIRED:
            them = "them" if len(batch) > 1 else "it"
            return (
                f"{whose} expired: nobody approved or rejected {them} in time, so nothing "
                "was ordered. You can ask again with /reward."
            )
        case Status.NEEDS_REVIEW:
            return (
                f"{whose} needs a manual check: "
                f"{escape(request.failure_reason or 'the order outcome is unknown')}"
            )
        case Status.FAILED:
            return (
                f"{whose} failed: {escape(request.failure_reason or 'unknown error')} "
                "You can submit a new request with /reward."
            )
        case _:
            return f"{whose}: {STATUS_LINES[request.status]}."


def second_approval_needed(request: RewardRequest) -> str:
    return (
        f"Reward #{request.id} has its first approval, from <@{request.first_approved_by}>, "
        "and needs a second: use Approve or Reject on the card above."
    )


def reminder(request: RewardRequest, expire_after_hours: float | None) -> str:
    """Nudges the approvers of a request that is still waiting for them."""
    waited = _hours(datetime.now(UTC) - request.created_at)
    text = (
        f":bell: Reminder: reward #{request.id} "
        f"({card_phrase(request)} "
        f"from <@{request.requester_id}> for <@{request.recipient_id}>) "
        f"has waited {waited} for your decision: use Approve or Reject on its card."
    )
    if expire_after_hours is not None:
        left = request.created_at + timedelta(hours=expire_after_hours) - datetime.now(UTC)
        text += f" It expires in {_hours(left)} if nobody decides."
    return text


def _hours(span: timedelta) -> str:
    hours = max(span.total_seconds() / 3600, 0)
    if hours < 1:
        return f"{max(round(hours * 60), 1)} min"
    return f"{round(hours)} h"


def email_change_request(request: RewardRequest, change: EmailChange) -> tuple[str, list[Block]]:
    """The recipient's DM asking them to confirm an address an approver proposed for their
    card. The address is shown in full here alone, in code font so look-alikes show."""
    text = (
        f"<@{change.requested_by}> asks to email your reward #{request.id} to another address. "
        "Confirm it only if it is yours."
    )
    blocks: list[Block] = [
        mrkdwn_section(
            f"<@{change.requested_by}> asks to email your *{request.face_value} "
            f"{escape(request.product_name)}* gift card (reward #{request.id}) to\n"
            f"`{escape(change.email)}`\n"
            f"{escape(request.provider)} will email it there from now on, so confirm only if "
            f"this address is yours. Nothing is sent there unless you confirm by "
            f"{when(change.expires_at)}. If you did not ask for this, choose *Not my address*: "
            f"<@{change.requested_by}> and <@{request.requester_id}> are told."
        ),
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": CONFIRM_EMAIL_ACTION,
                    "style": "primary",
                    "text": plain("Confirm, it is mine"),
                    "value": str(change.id),
                },
                {
                    "type": "button",
                    "action_id": DECLINE_EMAIL_ACTION,
                    "style": "danger",
                    "text": plain("Not my address"),
                    "value": str(change.id),
                },
            ],
        },
    ]
    return text, blocks


def delivery_message(
    request: RewardRequest, redemption: Redemption | None
) -> tuple[str, list[Block]]:
    """The recipient's private DM: the only place a link, code or PIN is ever shown.

    ``None`` means the provider emailed the card itself. The notification ``text`` carries no
    secret, so nothing sensitive shows on a lock screen.
    """
    text = (
        f"You have received a {request.face_value} {request.product_name} gift card from "
        f"<@{request.requester_id}>! Open this message to redeem it."
    )
    blocks: list[Block] = [
        mrkdwn_section(
            f":gift: *<@{request.requester_id}> sent you a reward!*\n"
            f"*{request.face_value}* {escape(request.product_name)}\n{quote(request.message)}"
        ),
        *sandbox_notice(request),
    ]
    if redemption is None:
        return text, [*blocks, *_emailed_card_blocks(request)]
    return text, [*blocks, *_redemption_blocks(request, redemption)]


def _emailed_card_blocks(request: RewardRequest) -> list[Block]:
    """Where to find a card the provider emailed, and a button to have it emailed again."""
    return [
        mrkdwn_section(
            f"{escape(request.provider)} has emailed the card to you: check your inbox "
            "(and your spam folder)."
        ),
        buttons(request, (RESEND_ACTION, "Email it to me again", None)),
    ]


def _redemption_blocks(request: RewardRequest, redemption: Redemption) -> list[Block]:
    """The card itself: its code and PIN, its redemption link, and a way to get it again."""
    blocks: list[Block] = []
    # Plain text: a code is shown exactly as issued, whatever characters it contains.
    secrets = []
    if redemption.code is not None:
        secrets.append(f"Code: {redemption.code.get_secret_value()}")
    if redemption.pin is not None:
        secrets.append(f"PIN: {redemption.pin.get_secret_value()}")
    if secrets:
        blocks.append(
            {"type": "section", "text": {"type": "plain_text", "text": "\n".join(secrets)}}
        )
    if redemption.url is not None:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": REDEEM_ACTION,
                        "style": "primary",
                        "text": plain("Redeem your gift card"),
                        "url": redemption.url.get_secret_value(),
                    }
                ],
            }
        )
    # Lost the message or deleted it? The card is fetched from the provider and sent again.
    blocks.append(buttons(request, (RESEND_ACTION, "Send it to me again", None)))
    blocks.append(
        mrkdwn_context(
            "This card is yours alone: do not share it. It is never posted in a channel."
        )
    )
    return blocks
