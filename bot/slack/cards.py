"""A request's two live messages: its channel summary (the thread everyone follows) and the
approvers' cards (the buttons that decide it). Both are redrawn from stored state whenever the
request changes, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from bot.domain import AWAITING_DECISION, RewardRequest, Status, can_cancel
from bot.slack.blocks import Block, buttons, mrkdwn_context, mrkdwn_section, sandbox_notice
from bot.slack.ids import (
    APPROVE_ACTION,
    CANCEL_ACTION,
    CHECK_AGAIN_ACTION,
    ORDER_AGAIN_ACTION,
    REJECT_ACTION,
    RESEND_EMAIL_ACTION,
    RESOLVE_ACTION,
    RETRY_ACTION,
)
from bot.slack.lines import (
    STATUS_LINES,
    batch_headline,
    request_headline,
    same_amount,
    status_line,
    subject,
)
from bot.slack.text import escape, quote


def request_summary(
    request: RewardRequest, batch: Sequence[RewardRequest] = ()
) -> tuple[str, list[Block]]:
    """The channel message that is the request's (or batch's) thread; kept current with
    ``chat.update``."""
    batch = batch or [request]
    if len(batch) < 2:
        text = (
            f"Reward #{request.id}: <@{request.requester_id}> → <@{request.recipient_id}>, "
            f"{request.face_value} {request.product_name}. {STATUS_LINES[request.status]}"
        )
    else:
        text = f"<@{request.requester_id}> asks for {subject(request, batch)}."
    blocks = _details(request, batch)
    if can_cancel(request, datetime.now(UTC)):
        # Everyone in the channel sees it; only the requester's click is accepted.
        blocks.append(buttons(request, (CANCEL_ACTION, "Cancel request", None)))
    return text, blocks


def approval_card(
    request: RewardRequest,
    batch: Sequence[RewardRequest] = (),
    resendable: Collection[str] = (),
) -> tuple[str, list[Block]]:
    """An approver's card: details, Approve / Reject while undecided (for the whole batch),
    then whatever each recipient's order needs from an approver (review, retry, and for the
    ``resendable`` providers' delivered cards, emailing them to another address)."""
    batch = batch or [request]
    text = f"<@{request.requester_id}> asks you to approve {subject(request, batch)}."
    blocks = _details(request, batch)
    if request.status is Status.AWAITING_SECOND_APPROVAL:
        blocks.append(
            mrkdwn_section(
                f"*Second approval needed:* <@{request.first_approved_by}> approved; a "
                "different approver must approve too."
            )
        )
    if request.status in AWAITING_DECISION:
        blocks.append(
            buttons(
                request, (APPROVE_ACTION, "Approve", "primary"), (REJECT_ACTION, "Reject", "danger")
            )
        )
    for member in batch:
        blocks += _recovery_blocks(member, len(batch) > 1, resendable)
    return text, blocks


def _details(request: RewardRequest, batch: Sequence[RewardRequest]) -> list[Block]:
    if len(batch) < 2:
        return [
            mrkdwn_section(f"{request_headline(request)}\n{quote(request.message)}"),
            mrkdwn_context(status_line(request)),
            *sandbox_notice(request),
        ]
    # One line per recipient: after approval each card is ordered and delivered on its own.
    # A context block holds at most 10 elements, so the lines come in blocks of ten.
    same = same_amount(batch)
    rows = [
        {
            "type": "mrkdwn",
            "text": f"• <@{m.recipient_id}>{'' if same else f' · {m.face_value}'}: "
            f"{status_line(m)}",
        }
        for m in batch
    ]
    return [
        mrkdwn_section(f"{batch_headline(batch)}\n{quote(request.message)}"),
        *({"type": "context", "elements": rows[i : i + 10]} for i in range(0, len(rows), 10)),
        *sandbox_notice(request),
    ]


def _recovery_blocks(
    request: RewardRequest, name_recipient: bool, resendable: Collection[str]
) -> list[Block]:
    """What an approver can do about one order that needs review or failed, or about a card
    the provider emailed (send it to a corrected address)."""
    whose = f"<@{request.recipient_id}>'s card: " if name_recipient else ""
    if request.status is Status.FULFILLED and request.provider in resendable:
        emailed = f"{whose}emailed by {escape(request.provider)}."
        blocks = [mrkdwn_section(emailed)] if name_recipient else []
        resend = (RESEND_EMAIL_ACTION, "Email it to another address", None)
        return [*blocks, buttons(request, resend)]
    if request.status is Status.NEEDS_REVIEW:
        return _review_blocks(request, whose)
    if request.status is Status.FAILED:
        blocks = [mrkdwn_section(f"{whose}the order failed.")] if name_recipient else []
        return [*blocks, buttons(request, (RETRY_ACTION, "Retry the order", "primary"))]
    return []


def _review_blocks(request: RewardRequest, whose: str) -> list[Block]:
    """Advice and buttons for an order whose outcome must be checked with the provider."""
    advice = mrkdwn_section(
        f"{whose}*This reward needs a check with {escape(request.provider)}.* "
        + (
            "If no card was issued, order it again"
            if request.provider_order_id is None
            else f"Once order {escape(request.provider_order_id)} is sorted out, "
            "check it again to deliver it"
        )
        + "; if it was settled by hand, mark it resolved."
        + (
            " It was ordered in one order with others of this request, so what you choose "
            "applies to all of them."
            if request.order_key is not None and request.provider_order_id is None
            else ""
        )
    )
    # An order id means the card may exist: never offer to buy it again.
    retry = (
        (ORDER_AGAIN_ACTION, "Order again", "primary")
        if request.provider_order_id is None
        else (CHECK_AGAIN_ACTION, "Check again", "primary")
    )
    return [advice, buttons(request, retry, (RESOLVE_ACTION, "Mark resolved", None))]
