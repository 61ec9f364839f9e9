"""The modals: the reward form, and the one-question forms about a request (reject with a
reason, email the card to another address)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from bot.domain import (
    AMOUNT_MAX_CHARS,
    MAX_RECIPIENTS,
    MESSAGE_MAX_CHARS,
    REASON_MAX_CHARS,
    RewardRequest,
)
from bot.slack.blocks import Block, mrkdwn_section, plain
from bot.slack.ids import (
    AMOUNT_BLOCK,
    CARD_BLOCK,
    DELIVER_AT_BLOCK,
    EMAIL_BLOCK,
    INPUT_ACTION,
    MESSAGE_BLOCK,
    MORE_RECIPIENTS_BLOCK,
    REASON_BLOCK,
    RECIPIENT_BLOCK,
    REJECT_MODAL,
    RESEND_EMAIL_MODAL,
    REWARD_MODAL,
    RequestModalMetadata,
    RewardModalMetadata,
    amount_block,
)
from bot.slack.lines import request_headline
from providers.base import Product

# Slack shows at most 100 options in a select.
MAX_SELECT_OPTIONS = 100


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
        {"text": plain(product_label(p)), "value": p.key} for p in products[:MAX_SELECT_OPTIONS]
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
    return {
        "type": "modal",
        "callback_id": REWARD_MODAL,
        "title": plain("Send a reward"),
        "submit": plain("Request approval"),
        "close": plain("Cancel"),
        "private_metadata": metadata.model_dump_json(),
        "blocks": [
            _recipient_input(prefill),
            _more_recipients_input(),
            _card_input(products),
            _amount_input(prefill, bool(more_recipients)),
            *(_own_amount_input(user_id, name) for user_id, name in more_recipients),
            _message_input(prefill),
            _deliver_at_input(metadata.timezone),
        ],
    }


def reject_modal(request: RewardRequest) -> dict[str, Any]:
    return _request_modal(
        request,
        REJECT_MODAL,
        ("Reject reward", "Reject"),
        _input_block(
            REASON_BLOCK,
            "Reason (shown to the requester)",
            {
                "type": "plain_text_input",
                "action_id": INPUT_ACTION,
                "multiline": True,
                "max_length": REASON_MAX_CHARS,
            },
            optional=True,
        ),
    )


def resend_email_modal(request: RewardRequest) -> dict[str, Any]:
    """An approver gives the address the provider should email the card to instead."""
    return _request_modal(
        request,
        RESEND_EMAIL_MODAL,
        ("Email the card again", "Send"),
        _input_block(
            EMAIL_BLOCK,
            "Send it to",
            {"type": "email_text_input", "action_id": INPUT_ACTION},
            hint=(
                f"{request.provider} emails the card here only once the recipient confirms the "
                "address in Slack (unless it is their Slack email). The recipient and the "
                "requester are told."
            ),
        ),
    )


def _request_modal(
    request: RewardRequest, callback_id: str, title_and_submit: tuple[str, str], field: Block
) -> dict[str, Any]:
    """A modal asking one thing about a request, under the request's headline."""
    title, submit = title_and_submit
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain(title),
        "submit": plain(submit),
        "close": plain("Back"),
        "private_metadata": RequestModalMetadata(request_id=request.id).model_dump_json(),
        "blocks": [mrkdwn_section(request_headline(request)), field],
    }


def _input_block(
    block_id: str,
    label: str,
    element: Block,
    *,
    optional: bool = False,
    dispatch_action: bool = False,
    hint: str | None = None,
) -> Block:
    """One labelled field of a modal; its value comes back under ``block_id``."""
    block: Block = {"type": "input", "block_id": block_id}
    if optional:
        block["optional"] = True
    if dispatch_action:
        block["dispatch_action"] = True
    block["label"] = plain(label)
    if hint is not None:
        block["hint"] = plain(hint)
    block["element"] = element
    return block


def _recipient_input(prefill: RewardPrefill) -> Block:
    recipient: Block = {
        "type": "users_select",
        "action_id": INPUT_ACTION,
        "placeholder": plain("Who earned it?"),
    }
    if prefill.recipient_id:
        recipient["initial_user"] = prefill.recipient_id
    return _input_block(RECIPIENT_BLOCK, "Recipient", recipient)


def _more_recipients_input() -> Block:
    return _input_block(
        MORE_RECIPIENTS_BLOCK,
        "Also reward (optional)",
        {
            "type": "multi_users_select",
            "action_id": INPUT_ACTION,
            "placeholder": plain("More people"),
            "max_selected_items": MAX_RECIPIENTS - 1,
        },
        optional=True,
        # Picking people redraws the form with an amount field for each of them.
        dispatch_action=True,
        hint="Each person gets their own card of this type, approved together.",
    )


def _card_input(products: Sequence[Product]) -> Block:
    card: Block = {
        "type": "static_select",
        "action_id": INPUT_ACTION,
        "placeholder": plain("Pick a gift card"),
        "options": card_options(products),
    }
    if len(products) > MAX_SELECT_OPTIONS:
        # Too many to list: Slack asks us for matches as the user types (block_suggestion).
        card = {
            "type": "external_select",
            "action_id": INPUT_ACTION,
            "placeholder": plain("Type a brand, currency or provider"),
            "min_query_length": 1,
        }
    return _input_block(CARD_BLOCK, "Card type", card)


def _amount_input(prefill: RewardPrefill, for_several: bool) -> Block:
    amount: Block = {
        "type": "plain_text_input",
        "action_id": INPUT_ACTION,
        "max_length": AMOUNT_MAX_CHARS,
        "placeholder": plain("e.g. 25"),
    }
    if prefill.amount:
        amount["initial_value"] = prefill.amount[:AMOUNT_MAX_CHARS]
    hint = "In the card's currency, within the values shown beside it."
    if for_several:
        hint += " Everyone's amount, unless you give theirs below."
    return _input_block(AMOUNT_BLOCK, "Amount", amount, hint=hint)


def _own_amount_input(user_id: str, name: str) -> Block:
    """One more recipient's own amount; empty, they get the main one."""
    return _input_block(
        amount_block(user_id),
        f"Amount for {name}"[:2000],
        {
            "type": "plain_text_input",
            "action_id": INPUT_ACTION,
            "max_length": AMOUNT_MAX_CHARS,
            "placeholder": plain("Same as above"),
        },
        optional=True,
    )


def _message_input(prefill: RewardPrefill) -> Block:
    message: Block = {
        "type": "plain_text_input",
        "action_id": INPUT_ACTION,
        "multiline": True,
        "max_length": MESSAGE_MAX_CHARS,
        "placeholder": plain("What is it for?"),
    }
    if prefill.message:
        message["initial_value"] = prefill.message[:MESSAGE_MAX_CHARS]
    return _input_block(MESSAGE_BLOCK, "Message", message)


def _deliver_at_input(timezone: str | None) -> Block:
    return _input_block(
        DELIVER_AT_BLOCK,
        "Deliver at (optional)",
        {"type": "datetimepicker", "action_id": INPUT_ACTION},
        optional=True,
        hint=(
            "Leave empty to send it as soon as it is approved. The time is in your "
            f"Slack time zone{f' ({timezone})' if timezone else ''}."
        ),
    )
