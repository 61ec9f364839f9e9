"""The Block Kit builders, called directly: the reward form's fields and limits, which buttons
each card offers at each status, user text made inert, and where card secrets may appear."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

from bot.domain import (
    AMOUNT_MAX_CHARS,
    MAX_RECIPIENTS,
    MESSAGE_MAX_CHARS,
    REASON_MAX_CHARS,
    RewardRequest,
    Status,
)
from bot.slack.blocks import SANDBOX_NOTICE
from bot.slack.cards import approval_card, request_summary
from bot.slack.home import home_view
from bot.slack.ids import (
    APPROVE_ACTION,
    CANCEL_ACTION,
    CHECK_AGAIN_ACTION,
    CONFIRM_EMAIL_ACTION,
    DECLINE_EMAIL_ACTION,
    INPUT_ACTION,
    ORDER_AGAIN_ACTION,
    REDEEM_ACTION,
    REJECT_ACTION,
    REJECT_MODAL,
    RESEND_ACTION,
    RESEND_EMAIL_ACTION,
    RESOLVE_ACTION,
    RETRY_ACTION,
    REWARD_MODAL,
    RequestModalMetadata,
    RewardModalMetadata,
    amount_block,
)
from bot.slack.lines import event_line, request_line, status_line
from bot.slack.messages import (
    delivery_message,
    email_change_request,
    reminder,
    requester_update,
    thread_update,
)
from bot.slack.modals import (
    RewardPrefill,
    matching_products,
    product_label,
    reject_modal,
    reward_modal,
)
from bot.slack.text import escape
from bot.store import SYSTEM_ACTOR, EmailChange, Event
from providers.base import Product, Redemption
from tests.unit.support import stored_request

MAYA, JANE, OMAR, ARJUN = "U0MAYA", "U0JANE", "U0OMAR", "U0ARJUN"
# Text a requester could type to ping everyone or fake a link, were it not escaped.
HOSTILE = "<!channel> & <https://evil.example|your bank>"
INERT = "&lt;!channel&gt; &amp; &lt;https://evil.example|your bank&gt;"


def reward(**changes: Any) -> RewardRequest:
    """Reward #7: Maya asks for a 25.00 GBP Sandbox Books card for Jane."""
    return stored_request(**changes)


def product(number: int = 1) -> Product:
    return Product(
        provider="sandbox",
        product_id=f"P{number}",
        name=f"Card {number}",
        currency="GBP",
        min_value=Decimal(5),
        max_value=Decimal(500),
    )


def modal(
    prefill: RewardPrefill | None = None,
    more_recipients: list[tuple[str, str]] | None = None,
    products: list[Product] | None = None,
    timezone: str | None = None,
) -> dict[str, Any]:
    return reward_modal(
        products if products is not None else [product()],
        prefill or RewardPrefill(),
        RewardModalMetadata(channel_id="C0TEAMWINS", timezone=timezone),
        more_recipients or (),
    )


def block(view_or_blocks: dict[str, Any] | list[dict[str, Any]], block_id: str) -> dict[str, Any]:
    blocks = view_or_blocks["blocks"] if isinstance(view_or_blocks, dict) else view_or_blocks
    [found] = [b for b in blocks if b.get("block_id") == block_id]
    return found


def buttons(blocks: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """Every button's ``(action_id, value)``, in order."""
    return [
        (element["action_id"], element.get("value"))
        for b in blocks
        if b["type"] == "actions"
        for element in b["elements"]
    ]


def text_of(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks)


# -- the reward form ---------------------------------------------------------------------------


def test_the_reward_form_asks_for_each_field_within_slacks_limits() -> None:
    view = modal()
    assert view["type"] == "modal" and view["callback_id"] == REWARD_MODAL
    assert [b["block_id"] for b in view["blocks"]] == [
        "recipient",
        "more_recipients",
        "card",
        "amount",
        "message",
        "deliver_at",
    ]
    assert {b["element"]["action_id"] for b in view["blocks"]} == {INPUT_ACTION}
    assert block(view, "amount")["element"]["max_length"] == AMOUNT_MAX_CHARS == 200
    assert block(view, "message")["element"]["max_length"] == MESSAGE_MAX_CHARS == 1000
    more = block(view, "more_recipients")
    assert more["optional"] and more["dispatch_action"]
    assert more["element"]["max_selected_items"] == MAX_RECIPIENTS - 1 == 19
    assert block(view, "deliver_at")["optional"]
    assert not block(view, "recipient").get("optional")
    metadata = RewardModalMetadata.model_validate_json(view["private_metadata"])
    assert metadata == RewardModalMetadata(channel_id="C0TEAMWINS")


def test_the_form_is_prefilled_and_cut_to_its_limits() -> None:
    prefill = RewardPrefill(recipient_id=JANE, amount="9" * 300, message="x" * 1500)
    view = modal(prefill)
    assert block(view, "recipient")["element"]["initial_user"] == JANE
    assert block(view, "amount")["element"]["initial_value"] == "9" * 200
    assert block(view, "message")["element"]["initial_value"] == "x" * 1000
    empty = modal()
    for field in ("recipient", "amount", "message"):
        element = block(empty, field)["element"]
        assert "initial_user" not in element and "initial_value" not in element


def test_the_delivery_time_is_said_to_be_in_the_requesters_time_zone() -> None:
    assert "(Europe/Paris)" in block(modal(timezone="Europe/Paris"), "deliver_at")["hint"]["text"]
    assert "time zone." in block(modal(), "deliver_at")["hint"]["text"]


def test_each_extra_recipient_gets_an_optional_amount_of_their_own() -> None:
    view = modal(more_recipients=[(OMAR, "Omar Outsider"), ("U0LIN", "Lin Approver")])
    ids = [b["block_id"] for b in view["blocks"]]
    assert ids[ids.index("amount") + 1 :][:2] == ["amount_for_U0OMAR", "amount_for_U0LIN"]
    own = block(view, amount_block(OMAR))
    assert own["optional"] and own["label"]["text"] == "Amount for Omar Outsider"
    assert own["element"]["max_length"] == AMOUNT_MAX_CHARS
    assert "Everyone's amount" in block(view, "amount")["hint"]["text"]
    assert "Everyone's amount" not in block(modal(), "amount")["hint"]["text"]


def test_cards_are_listed_up_to_slacks_limit_then_searched() -> None:
    listed = block(modal(products=[product(n) for n in range(100)]), "card")["element"]
    assert listed["type"] == "static_select" and len(listed["options"]) == 100
    assert listed["options"][0] == {
        "text": {"type": "plain_text", "text": "Card 0 · 5 to 500 GBP", "emoji": True},
        "value": product(0).key,
    }
    searched = block(modal(products=[product(n) for n in range(101)]), "card")["element"]
    assert searched["type"] == "external_select" and searched["min_query_length"] == 1
    assert "options" not in searched


def test_a_card_label_fits_in_a_select_option() -> None:
    long = product().model_copy(update={"name": "N" * 100})
    assert len(product_label(long)) == 75


def test_matching_products_needs_every_word_in_name_currency_or_provider() -> None:
    books = product(1).model_copy(update={"name": "Books"})
    coffee = product(2).model_copy(update={"name": "Coffee", "currency": "USD"})
    assert matching_products([books, coffee], "usd COFFEE") == [coffee]
    assert matching_products([books, coffee], "sandbox") == [books, coffee]
    assert matching_products([books, coffee], "books usd") == []


def test_the_reject_modal_carries_its_request_and_limits_the_reason() -> None:
    view = reject_modal(reward())
    assert view["callback_id"] == REJECT_MODAL
    reason = block(view, "reason")
    assert reason["optional"] and reason["element"]["max_length"] == REASON_MAX_CHARS
    metadata = RequestModalMetadata.model_validate_json(view["private_metadata"])
    assert metadata.request_id == 7


# -- approval cards ----------------------------------------------------------------------------


def test_an_undecided_card_offers_approve_and_reject_for_its_request() -> None:
    text, blocks = approval_card(reward())
    assert text == (
        "<@U0MAYA> asks you to approve reward #7: 25.00 GBP Sandbox Books for <@U0JANE>."
    )
    assert buttons(blocks) == [(APPROVE_ACTION, "7"), (REJECT_ACTION, "7")]
    [actions] = [b for b in blocks if b["type"] == "actions"]
    assert [e["style"] for e in actions["elements"]] == ["primary", "danger"]


def test_a_card_waiting_for_its_second_approval_says_who_gave_the_first() -> None:
    second = reward(status=Status.AWAITING_SECOND_APPROVAL, first_approved_by=ARJUN)
    _, blocks = approval_card(second)
    assert "*Second approval needed:* <@U0ARJUN> approved" in text_of(blocks)
    assert buttons(blocks) == [(APPROVE_ACTION, "7"), (REJECT_ACTION, "7")]


@pytest.mark.parametrize(
    ("changes", "offered"),
    [
        ({"status": Status.APPROVED}, []),
        ({"status": Status.FULFILLED}, []),
        ({"status": Status.REJECTED, "decided_by": ARJUN}, []),
        ({"status": Status.CANCELLED}, []),
        ({"status": Status.EXPIRED}, []),
        ({"status": Status.FAILED}, [RETRY_ACTION]),
        # No order id: no card can exist, so it may be ordered again.
        ({"status": Status.NEEDS_REVIEW}, [ORDER_AGAIN_ACTION, RESOLVE_ACTION]),
        # An order id means the card may exist: never offer to buy it again.
        (
            {"status": Status.NEEDS_REVIEW, "provider_order_id": "ORD-1"},
            [CHECK_AGAIN_ACTION, RESOLVE_ACTION],
        ),
    ],
)
def test_a_decided_card_offers_only_what_its_status_needs(
    changes: dict[str, Any], offered: list[str]
) -> None:
    _, blocks = approval_card(reward(**changes))
    assert [action for action, _ in buttons(blocks)] == offered
    assert APPROVE_ACTION not in text_of(blocks)


def test_a_delivered_emailed_card_can_be_sent_to_another_address() -> None:
    delivered = reward(status=Status.FULFILLED, provider="giftronaut")
    _, blocks = approval_card(delivered, resendable={"giftronaut"})
    assert buttons(blocks) == [(RESEND_EMAIL_ACTION, "7")]
    _, elsewhere = approval_card(delivered, resendable={"runa"})
    assert buttons(elsewhere) == []


def test_a_batch_card_names_each_recipient_and_its_buttons_name_each_request() -> None:
    batch = [
        reward(id=7, status=Status.FULFILLED),
        reward(id=8, recipient_id=OMAR, status=Status.FAILED),
    ]
    text, blocks = approval_card(batch[0], batch)
    assert "rewards #7-#8: 25.00 GBP Sandbox Books each for 2 people" in text
    assert "<@U0OMAR>'s card: the order failed." in text_of(blocks)
    assert buttons(blocks) == [(RETRY_ACTION, "8")]


def test_the_channel_summary_offers_cancel_only_while_it_can_be_cancelled() -> None:
    _, pending = request_summary(reward())
    assert buttons(pending) == [(CANCEL_ACTION, "7")]
    _, approved = request_summary(reward(status=Status.APPROVED, decided_by=ARJUN))
    assert buttons(approved) == []
    later = datetime.now(UTC) + timedelta(days=2)
    scheduled = reward(status=Status.APPROVED, decided_by=ARJUN, deliver_at=later)
    assert buttons(request_summary(scheduled)[1]) == [(CANCEL_ACTION, "7")]


def test_sandbox_rewards_say_no_real_card_is_issued() -> None:
    assert SANDBOX_NOTICE in text_of(approval_card(reward())[1])
    real = reward(provider="giftronaut")
    assert SANDBOX_NOTICE not in text_of(approval_card(real)[1])


# -- user text is inert ------------------------------------------------------------------------


def test_user_text_cannot_ping_everyone_or_fake_a_link_anywhere() -> None:
    hostile = reward(
        product_name=HOSTILE,
        message=HOSTILE,
        status=Status.REJECTED,
        decided_by=ARJUN,
        decision_reason=HOSTILE,
    )
    shown = [
        text_of(approval_card(hostile)[1]),
        text_of(request_summary(hostile)[1]),
        text_of(delivery_message(hostile, None)[1]),
        thread_update(hostile),
        requester_update(hostile),
        request_line(hostile),
        status_line(hostile),
    ]
    for text in shown:
        assert "<!channel>" not in text, text
        assert "&lt;!channel&gt;" in text, text


def test_escape_makes_slacks_control_characters_inert() -> None:
    assert escape(HOSTILE) == INERT


def test_a_long_message_is_quoted_whole_lines_and_cut_without_half_an_entity() -> None:
    _, blocks = approval_card(reward(message="line one\nline two"))
    assert "> line one\\n> line two" in text_of(blocks)
    _, long = approval_card(reward(message="&" * 3000))
    details = long[0]["text"]["text"]
    quote = details.split("\n", 1)[1]
    assert quote.endswith("&amp;…") and len(quote) <= 2500
    assert len(details) <= 3000


# -- the recipient's delivery ------------------------------------------------------------------


def test_the_delivery_shows_code_pin_and_link_only_in_its_blocks() -> None:
    redemption = Redemption(
        url=SecretStr("https://redeem.example/abc"),
        code=SecretStr("CODE-<b>-1"),
        pin=SecretStr("4321"),
    )
    text, blocks = delivery_message(reward(), redemption)
    for secret in ("https://redeem.example/abc", "CODE-<b>-1", "4321"):
        assert secret not in text
    # The code is shown exactly as issued, in plain text (not escaped mrkdwn).
    assert {"type": "plain_text", "text": "Code: CODE-<b>-1\nPIN: 4321"} in [
        b["text"] for b in blocks if b["type"] == "section"
    ]
    [redeem] = [
        e
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == REDEEM_ACTION
    ]
    assert redeem["url"] == "https://redeem.example/abc"
    assert buttons(blocks)[-1] == (RESEND_ACTION, "7")
    assert "It is never posted in a channel." in text_of(blocks)


def test_a_card_the_provider_emailed_offers_to_email_it_again() -> None:
    text, blocks = delivery_message(reward(provider="giftronaut"), None)
    assert "gift card from <@U0MAYA>" in text
    assert "giftronaut has emailed the card to you" in text_of(blocks)
    assert buttons(blocks) == [(RESEND_ACTION, "7")]
    assert "Email it to me again" in text_of(blocks)


def test_the_address_check_shows_the_address_in_code_font_with_its_two_answers() -> None:
    change = EmailChange(
        id=3,
        request_id=7,
        email="jane<@U0X>@example.com",
        requested_by=ARJUN,
        expires_at=datetime(2026, 11, 3, 9, 0, tzinfo=UTC),
        outcome=None,
        decided_by=None,
    )
    text, blocks = email_change_request(reward(provider="giftronaut"), change)
    assert "asks to email your reward #7 to another address" in text
    assert "jane" not in text
    assert "`jane&lt;@U0X&gt;@example.com`" in text_of(blocks)
    assert buttons(blocks) == [(CONFIRM_EMAIL_ACTION, "3"), (DECLINE_EMAIL_ACTION, "3")]


# -- words -------------------------------------------------------------------------------------


def test_the_reminder_says_how_long_it_waited_and_when_it_expires() -> None:
    waiting = reward(created_at=datetime.now(UTC) - timedelta(hours=2))
    with_expiry = reminder(waiting, expire_after_hours=24)
    assert "has waited 2 h for your decision" in with_expiry
    assert with_expiry.endswith("It expires in 22 h if nobody decides.")
    assert "expires" not in reminder(waiting, expire_after_hours=None)
    fresh = reward(created_at=datetime.now(UTC) - timedelta(seconds=10))
    assert "has waited 1 min" in reminder(fresh, None)


def test_the_status_line_says_who_decided_and_why() -> None:
    rejected = reward(status=Status.REJECTED, decided_by=ARJUN, decision_reason="Over budget")
    assert status_line(rejected) == (
        ":no_entry_sign: Rejected · Rejected by <@U0ARJUN>\nReason: Over budget"
    )
    second = reward(status=Status.AWAITING_SECOND_APPROVAL, first_approved_by=ARJUN)
    assert status_line(second).endswith("· First approval by <@U0ARJUN>")


def test_the_audit_line_names_rewardbot_for_its_own_steps() -> None:
    at = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    reminded = Event(
        request_id=7,
        kind="reminder",
        from_status=None,
        to_status=None,
        actor=SYSTEM_ACTOR,
        detail={},
        at=at,
    )
    assert event_line(reminded) == ("2026-11-02 09:30 UTC · :bell: Approvers reminded · rewardbot")
    approved = reminded.model_copy(
        update={"kind": "transition", "to_status": Status.APPROVED, "actor": ARJUN}
    )
    assert event_line(approved) == (
        "2026-11-02 09:30 UTC · :white_check_mark: Approved: ordering the gift card · <@U0ARJUN>"
    )


def test_the_home_tab_without_requests_says_how_to_start() -> None:
    home = home_view([], 0, [], [], "2026-11", sandbox=True)
    shown = text_of(home["blocks"])
    assert home["type"] == "home"
    assert "None yet. Type `/reward` in any channel to send one." in shown
    assert SANDBOX_NOTICE in shown
    assert "Waiting for your decision" not in shown


def test_the_home_tab_shows_how_many_wait_when_not_all_are_shown() -> None:
    home = home_view([[reward()]], 12, [reward(id=3)], ["eng: 40.00 GBP"], "2026-11")
    shown = text_of(home["blocks"])
    assert "*Waiting for your decision* (12, oldest 1 shown)" in shown
    assert buttons(home["blocks"]) == [(APPROVE_ACTION, "7"), (REJECT_ACTION, "7")]
    assert "*#3* <@U0JANE>" in shown and "*Your teams' budgets, 2026-11*" in shown
