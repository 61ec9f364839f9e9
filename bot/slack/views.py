"""Block Kit for every surface, rendered from a request's stored state.

Every function is pure: the same request renders the same message wherever it is shown, so the
channel summary, the approval cards and the thread cannot disagree. User-written text is escaped
before it reaches mrkdwn, so nobody can inject ``<!channel>``, mentions or links.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from bot.domain import AWAITING_DECISION, RewardRequest, Status
from bot.store import SYSTEM_ACTOR, EmailChange, Event
from providers.base import Product, Redemption
from providers.sandbox import SandboxProvider

Block = dict[str, Any]

REWARD_MODAL = "reward_request"
REJECT_MODAL = "reject_reason"
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
RESEND_EMAIL_MODAL = "resend_email"
CONFIRM_EMAIL_ACTION = "confirm_email"
DECLINE_EMAIL_ACTION = "decline_email"
# Every input in our modals uses this action_id; the block_id names the field.
INPUT_ACTION = "value"
MESSAGE_MAX_CHARS = 1000
AMOUNT_MAX_CHARS = 200
# People rewarded by one request (a bulk reward): the recipient and up to 19 more.
MAX_RECIPIENTS = 20
REASON_MAX_CHARS = 500
# Slack shows at most 100 options in a select.
MAX_SELECT_OPTIONS = 100
# A section's text is at most 3000 characters; the rest of the section needs about 400.
_QUOTE_MAX_CHARS = 2500

_STATUS_LINES = {
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


def escape(text: str) -> str:
    """Make user text inert in mrkdwn: ``&``, ``<`` and ``>`` are Slack's control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _mrkdwn_section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _quote(text: str) -> str:
    """User text as an escaped mrkdwn quote, short enough for a section (3000 characters)."""
    quoted = "\n".join("> " + line for line in escape(text).splitlines() or [""])
    if len(quoted) <= _QUOTE_MAX_CHARS:
        return quoted
    # Cut without leaving half an entity such as "&am" behind.
    return re.sub(r"&[a-z]*$", "", quoted[: _QUOTE_MAX_CHARS - 1]) + "…"


class RewardModalMetadata(BaseModel):
    """What the reward modal carries from the slash command to its submission."""

    channel_id: str
    # The requester's Slack time zone, named by the form (kept for when the form is redrawn).
    timezone: str | None = None


MORE_RECIPIENTS_BLOCK = "more_recipients"


def amount_block(user_id: str) -> str:
    """The block id of one person's own amount in the reward modal."""
    return f"amount_for_{user_id}"


class RewardPrefill(BaseModel):
    """Values parsed from ``/reward @jane 25 for shipping the release``."""

    recipient_id: str | None = None
    amount: str | None = None
    message: str | None = None


def product_label(product: Product) -> str:
    return f"{product.name} · {product.describe_allowed()}"[:75]


def card_options(products: Sequence[Product]) -> list[Block]:
    """Select options for ``products``, as many as a select may show."""
    return [
        {"text": _plain(product_label(p)), "value": p.key} for p in products[:MAX_SELECT_OPTIONS]
    ]


def matching_products(products: Sequence[Product], query: str) -> list[Product]:
    """Products whose name, currency or provider contain every word of ``query``."""
    words = query.casefold().split()
    return [
        p
        for p in products
        if all(w in f"{p.name} {p.currency} {p.provider}".casefold() for w in words)
    ]


def reward_modal(
    products: Sequence[Product],
    prefill: RewardPrefill,
    metadata: RewardModalMetadata,
    more_recipients: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """The reward form. ``more_recipients`` (user id, name) are the people picked under *Also
    reward*: each gets an optional amount of their own (the form is redrawn when they change;
    Slack keeps what was already entered, as every block and action id stays the same)."""
    timezone = metadata.timezone
    recipient: Block = {
        "type": "users_select",
        "action_id": INPUT_ACTION,
        "placeholder": _plain("Who earned it?"),
    }
    if prefill.recipient_id:
        recipient["initial_user"] = prefill.recipient_id
    amount: Block = {
        "type": "plain_text_input",
        "action_id": INPUT_ACTION,
        "max_length": AMOUNT_MAX_CHARS,
        "placeholder": _plain("e.g. 25"),
    }
    if prefill.amount:
        amount["initial_value"] = prefill.amount[:AMOUNT_MAX_CHARS]
    message: Block = {
        "type": "plain_text_input",
        "action_id": INPUT_ACTION,
        "multiline": True,
        "max_length": MESSAGE_MAX_CHARS,
        "placeholder": _plain("What is it for?"),
    }
    if prefill.message:
        message["initial_value"] = prefill.message[:MESSAGE_MAX_CHARS]
    card: Block = {
        "type": "static_select",
        "action_id": INPUT_ACTION,
        "placeholder": _plain("Pick a gift card"),
        "options": card_options(products),
    }
    if len(products) > MAX_SELECT_OPTIONS:
        # Too many to list: Slack asks us for matches as the user types (block_suggestion).
        card = {
            "type": "external_select",
            "action_id": INPUT_ACTION,
            "placeholder": _plain("Type a brand, currency or provider"),
            "min_query_length": 1,
        }
    return {
        "type": "modal",
        "callback_id": REWARD_MODAL,
        "title": _plain("Send a reward"),
        "submit": _plain("Request approval"),
        "close": _plain("Cancel"),
        "private_metadata": metadata.model_dump_json(),
        "blocks": [
            {
                "type": "input",
                "block_id": "recipient",
                "label": _plain("Recipient"),
                "element": recipient,
            },
            {
                "type": "input",
                "block_id": MORE_RECIPIENTS_BLOCK,
                "optional": True,
                # Picking people redraws the form with an amount field for each of them.
                "dispatch_action": True,
                "label": _plain("Also reward (optional)"),
                "hint": _plain("Each person gets their own card of this type, approved together."),
                "element": {
                    "type": "multi_users_select",
                    "action_id": INPUT_ACTION,
                    "placeholder": _plain("More people"),
                    "max_selected_items": MAX_RECIPIENTS - 1,
                },
            },
            {
                "type": "input",
                "block_id": "card",
                "label": _plain("Card type"),
                "element": card,
            },
            {
                "type": "input",
                "block_id": "amount",
                "label": _plain("Amount"),
                "hint": _plain(
                    "In the card's currency, within the values shown beside it. Everyone's "
                    "amount, unless you give theirs below."
                    if more_recipients
                    else "In the card's currency, within the values shown beside it."
                ),
                "element": amount,
            },
            *(
                {
                    "type": "input",
                    "block_id": amount_block(user_id),
                    "optional": True,
                    "label": _plain(f"Amount for {name}"[:2000]),
                    "element": {
                        "type": "plain_text_input",
                        "action_id": INPUT_ACTION,
                        "max_length": AMOUNT_MAX_CHARS,
                        "placeholder": _plain("Same as above"),
                    },
                }
                for user_id, name in more_recipients
            ),
            {
                "type": "input",
                "block_id": "message",
                "label": _plain("Message"),
                "element": message,
            },
            {
                "type": "input",
                "block_id": "deliver_at",
                "optional": True,
                "label": _plain("Deliver at (optional)"),
                "hint": _plain(
                    "Leave empty to send it as soon as it is approved. The time is in your "
                    f"Slack time zone{f' ({timezone})' if timezone else ''}."
                ),
                "element": {"type": "datetimepicker", "action_id": INPUT_ACTION},
            },
        ],
    }


def reject_modal(request: RewardRequest) -> dict[str, Any]:
    return _request_modal(
        request,
        REJECT_MODAL,
        ("Reject reward", "Reject"),
        {
            "type": "input",
            "block_id": "reason",
            "optional": True,
            "label": _plain("Reason (shown to the requester)"),
            "element": {
                "type": "plain_text_input",
                "action_id": INPUT_ACTION,
                "multiline": True,
                "max_length": REASON_MAX_CHARS,
            },
        },
    )


def resend_email_modal(request: RewardRequest) -> dict[str, Any]:
    """An approver gives the address the provider should email the card to instead."""
    return _request_modal(
        request,
        RESEND_EMAIL_MODAL,
        ("Email the card again", "Send"),
        {
            "type": "input",
            "block_id": "email",
            "label": _plain("Send it to"),
            "hint": _plain(
                f"{request.provider} emails the card here only once the recipient confirms the "
                "address in Slack (unless it is their Slack email). The recipient and the "
                "requester are told."
            ),
            "element": {"type": "email_text_input", "action_id": INPUT_ACTION},
        },
    )


class RequestModalMetadata(BaseModel):
    """What a modal about one request carries to its submission."""

    request_id: int


def _request_modal(
    request: RewardRequest, callback_id: str, title_and_submit: tuple[str, str], field: Block
) -> dict[str, Any]:
    """A modal asking one thing about a request, under the request's headline."""
    title, submit = title_and_submit
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": _plain(title),
        "submit": _plain(submit),
        "close": _plain("Back"),
        "private_metadata": RequestModalMetadata(request_id=request.id).model_dump_json(),
        "blocks": [_mrkdwn_section(request_headline(request)), field],
    }


def request_headline(request: RewardRequest) -> str:
    return (
        f"*Reward #{request.id}*: <@{request.requester_id}> → <@{request.recipient_id}>, "
        f"*{request.face_value}* {escape(request.product_name)}"
    )


def when(moment: datetime) -> str:
    """A time as Slack shows it to each reader, in their own time zone."""
    fallback = f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def is_scheduled(request: RewardRequest) -> bool:
    """Due for delivery at a time still in the future."""
    return (
        request.deliver_at is not None
        and request.status in (*AWAITING_DECISION, Status.APPROVED, Status.ORDERING)
        and request.deliver_at > datetime.now(UTC)
    )


def can_cancel(request: RewardRequest) -> bool:
    """Undecided; approved but held for its delivery time (nothing is ordered yet); or
    scheduled at a provider that can still cancel it."""
    now = datetime.now(UTC)
    return (
        request.status in AWAITING_DECISION
        or (request.status is Status.APPROVED and is_scheduled(request))
        or (
            request.status is Status.ORDERING
            and request.cancel_before is not None
            and now < request.cancel_before
        )
    )


def status_line(request: RewardRequest) -> str:
    line = _STATUS_LINES[request.status]
    if is_scheduled(request):
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


# Said on every message about a sandbox reward, and on the App Home while the sandbox runs.
SANDBOX_NOTICE = (
    ":test_tube: *Sandbox:* no real gift card is issued and no money is spent; "
    "its links redeem nothing."
)


def _sandbox_notice(request: RewardRequest) -> list[Block]:
    if request.provider != SandboxProvider.name:
        return []
    return [{"type": "context", "elements": [{"type": "mrkdwn", "text": SANDBOX_NOTICE}]}]


def _details(request: RewardRequest, batch: Sequence[RewardRequest]) -> list[Block]:
    if len(batch) < 2:
        return [
            _mrkdwn_section(f"{request_headline(request)}\n{_quote(request.message)}"),
            {"type": "context", "elements": [{"type": "mrkdwn", "text": status_line(request)}]},
            *_sandbox_notice(request),
        ]
    # One line per recipient: after approval each card is ordered and delivered on its own.
    # A context block holds at most 10 elements, so the lines come in blocks of ten.
    same = _same_amount(batch)
    rows = [
        {
            "type": "mrkdwn",
            "text": f"• <@{m.recipient_id}>{'' if same else f' · {m.face_value}'}: "
            f"{status_line(m)}",
        }
        for m in batch
    ]
    return [
        _mrkdwn_section(f"{batch_headline(batch)}\n{_quote(request.message)}"),
        *({"type": "context", "elements": rows[i : i + 10]} for i in range(0, len(rows), 10)),
        *_sandbox_notice(request),
    ]


def batch_headline(batch: Sequence[RewardRequest]) -> str:
    first = batch[0]
    # Every recipient is on their own line below; the headline names the first few.
    people = ", ".join(f"<@{m.recipient_id}>" for m in batch[:5])
    if len(batch) > 5:
        people += f" and {len(batch) - 5} more"
    amount = f"{first.face_value} each" if _same_amount(batch) else "different amounts"
    return (
        f"*Rewards #{first.id}-#{batch[-1].id}*: <@{first.requester_id}> → {people}, "
        f"*{amount}* {escape(first.product_name)}"
    )


def _same_amount(batch: Sequence[RewardRequest]) -> bool:
    return len({m.face_value for m in batch}) == 1


def _subject(request: RewardRequest, batch: Sequence[RewardRequest]) -> str:
    if len(batch) < 2:
        return (
            f"reward #{request.id}: {request.face_value} {escape(request.product_name)} for "
            f"<@{request.recipient_id}>"
        )
    amount = f"{request.face_value} " if _same_amount(batch) else ""
    each = " each" if _same_amount(batch) else ""
    return (
        f"rewards #{batch[0].id}-#{batch[-1].id}: {amount}"
        f"{escape(request.product_name)}{each} for {len(batch)} people"
    )


def request_summary(
    request: RewardRequest, batch: Sequence[RewardRequest] = ()
) -> tuple[str, list[Block]]:
    """The channel message that is the request's (or batch's) thread; kept current with
    ``chat.update``."""
    batch = batch or [request]
    if len(batch) < 2:
        text = (
            f"Reward #{request.id}: <@{request.requester_id}> → <@{request.recipient_id}>, "
            f"{request.face_value} {request.product_name}. {_STATUS_LINES[request.status]}"
        )
    else:
        text = f"<@{request.requester_id}> asks for {_subject(request, batch)}."
    blocks = _details(request, batch)
    if can_cancel(request):
        # Everyone in the channel sees it; only the requester's click is accepted.
        blocks.append(_buttons(request, (CANCEL_ACTION, "Cancel request", None)))
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
    text = f"<@{request.requester_id}> asks you to approve {_subject(request, batch)}."
    blocks = _details(request, batch)
    if request.status is Status.AWAITING_SECOND_APPROVAL:
        blocks.append(
            _mrkdwn_section(
                f"*Second approval needed:* <@{request.first_approved_by}> approved; a "
                "different approver must approve too."
            )
        )
    if request.status in AWAITING_DECISION:
        blocks.append(
            _buttons(
                request, (APPROVE_ACTION, "Approve", "primary"), (REJECT_ACTION, "Reject", "danger")
            )
        )
    for member in batch:
        blocks += _recovery_blocks(member, len(batch) > 1, resendable)
    return text, blocks


def _recovery_blocks(
    request: RewardRequest, name_recipient: bool, resendable: Collection[str]
) -> list[Block]:
    """What an approver can do about one order that needs review or failed, or about a card
    the provider emailed (send it to a corrected address)."""
    whose = f"<@{request.recipient_id}>'s card: " if name_recipient else ""
    if request.status is Status.FULFILLED and request.provider in resendable:
        emailed = f"{whose}emailed by {escape(request.provider)}."
        blocks = [_mrkdwn_section(emailed)] if name_recipient else []
        resend = (RESEND_EMAIL_ACTION, "Email it to another address", None)
        return [*blocks, _buttons(request, resend)]
    if request.status is Status.NEEDS_REVIEW:
        advice = _mrkdwn_section(
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
        return [advice, _buttons(request, retry, (RESOLVE_ACTION, "Mark resolved", None))]
    if request.status is Status.FAILED:
        blocks = [_mrkdwn_section(f"{whose}the order failed.")] if name_recipient else []
        return [*blocks, _buttons(request, (RETRY_ACTION, "Retry the order", "primary"))]
    return []


def _buttons(request: RewardRequest, *buttons: tuple[str, str, str | None]) -> Block:
    elements = []
    for action_id, label, style in buttons:
        button = {
            "type": "button",
            "action_id": action_id,
            "text": _plain(label),
            "value": str(request.id),
        }
        if style:
            button["style"] = style
        elements.append(button)
    return {"type": "actions", "block_id": f"{request.status}-{request.id}", "elements": elements}


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
        case Status.APPROVED if is_scheduled(request):
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


def home_view(
    waiting: Sequence[Sequence[RewardRequest]],
    waiting_total: int,
    own: Sequence[RewardRequest],
    budgets: Sequence[str],
    month: str,
    sandbox: bool = False,
) -> dict[str, Any]:
    """The App Home tab. Its buttons are the approval cards' own, and work the same way.
    ``sandbox``: the sandbox provider is enabled, and the tab says what that means."""
    blocks: list[Block] = [{"type": "header", "text": _plain("Rewards")}]
    if sandbox:
        blocks.append(_mrkdwn_section(SANDBOX_NOTICE))
    if waiting:
        shown = (
            f"{waiting_total}, oldest {len(waiting)} shown"
            if waiting_total > len(waiting)
            else waiting_total
        )
        blocks.append(_mrkdwn_section(f"*Waiting for your decision* ({shown})"))
        for batch in waiting:
            _, card = approval_card(batch[0], batch)
            blocks += card
            blocks.append({"type": "divider"})
    blocks.append(_mrkdwn_section("*Your recent requests*"))
    if own:
        blocks += [_mrkdwn_section(f"{request_line(r)}\n_{next_step(r)}_") for r in own]
    else:
        blocks.append(_mrkdwn_section("None yet. Type `/reward` in any channel to send one."))
    if budgets:
        blocks.append(_mrkdwn_section(f"*Your teams' budgets, {month}*"))
        blocks += [_mrkdwn_section(line) for line in budgets]
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": "`/reward help` shows every command."}],
        }
    )
    return {"type": "home", "blocks": blocks}


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


def request_line(request: RewardRequest) -> str:
    """One line per request in lists: number, who, what, where it stands."""
    return (
        f"*#{request.id}* <@{request.recipient_id}> · {request.face_value} "
        f"{escape(request.product_name)} · {_STATUS_LINES[request.status]}"
    )


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


def next_step(request: RewardRequest) -> str:
    return _NEXT_STEPS[request.status]


def event_line(event: Event) -> str:
    """One audit event, for people: when, what, who."""
    when = f"{event.at:%Y-%m-%d %H:%M} UTC"
    who = "rewardbot" if event.actor == SYSTEM_ACTOR else f"<@{event.actor}>"
    if event.kind == "created":
        what = ":memo: Requested"
    elif event.to_status is not None:
        what = _STATUS_LINES[event.to_status]
    else:
        what = {
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
        }.get(event.kind, event.kind.replace("_", " "))
    return f"{when} · {what} · {who}"


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
        f"reward #{request.id} ({request.face_value} {escape(request.product_name)} for "
        f"<@{request.recipient_id}>)"
        if len(batch) < 2
        else f"{_subject(request, batch)}, decided together"
    )
    return (
        f":white_check_mark: Your {what} {steps}. Its thread "
        "shows every step, and you can cancel it there until it is decided. Once approved, "
        f"the card is {delivery}."
    )


def requester_update(request: RewardRequest, batch: Sequence[RewardRequest] = ()) -> str:
    """What the requester is told privately when their request settles; with ``batch``, of a
    change made to the whole batch at once."""
    subject = (
        f"Your {_subject(request, batch)}"
        if len(batch) > 1
        else f"Your reward #{request.id} for <@{request.recipient_id}> ({request.face_value})"
    )
    match request.status:
        case Status.FULFILLED:
            return f"{subject} was delivered. Thank you for recognising them!"
        case Status.REJECTED:
            reason = (
                f" Reason: {escape(request.decision_reason)}" if request.decision_reason else ""
            )
            were = "were" if len(batch) > 1 else "was"
            return f"{subject} {were} rejected by <@{request.decided_by}>.{reason}"
        case Status.RESOLVED:
            return f"{subject} was settled by hand after a review."
        case Status.EXPIRED:
            them = "them" if len(batch) > 1 else "it"
            return (
                f"{subject} expired: nobody approved or rejected {them} in time, so nothing "
                "was ordered. You can ask again with /reward."
            )
        case Status.NEEDS_REVIEW:
            return (
                f"{subject} needs a manual check: "
                f"{escape(request.failure_reason or 'the order outcome is unknown')}"
            )
        case Status.FAILED:
            return (
                f"{subject} failed: {escape(request.failure_reason or 'unknown error')} "
                "You can submit a new request with /reward."
            )
        case _:
            return f"{subject}: {_STATUS_LINES[request.status]}."


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
        f"({request.face_value} {escape(request.product_name)} "
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
        _mrkdwn_section(
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
                    "text": _plain("Confirm, it is mine"),
                    "value": str(change.id),
                },
                {
                    "type": "button",
                    "action_id": DECLINE_EMAIL_ACTION,
                    "style": "danger",
                    "text": _plain("Not my address"),
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
        _mrkdwn_section(
            f":gift: *<@{request.requester_id}> sent you a reward!*\n"
            f"*{request.face_value}* {escape(request.product_name)}\n{_quote(request.message)}"
        ),
        *_sandbox_notice(request),
    ]
    if redemption is None:
        blocks.append(
            _mrkdwn_section(
                f"{escape(request.provider)} has emailed the card to you: check your inbox "
                "(and your spam folder)."
            )
        )
        blocks.append(_buttons(request, (RESEND_ACTION, "Email it to me again", None)))
        return text, blocks
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
                        "text": _plain("Redeem your gift card"),
                        "url": redemption.url.get_secret_value(),
                    }
                ],
            }
        )
    # Lost the message or deleted it? The card is fetched from the provider and sent again.
    blocks.append(_buttons(request, (RESEND_ACTION, "Send it to me again", None)))
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "This card is yours alone: do not share it. "
                    "It is never posted in a channel.",
                }
            ],
        }
    )
    return text, blocks
