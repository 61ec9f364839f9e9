"""Everything the bot must refuse, and what the refused user sees. Nothing changes on refusal."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.domain import Status
from bot.errors import RequestNotFound
from bot.offline.emulator.errors import EmulatorError
from bot.slack.ids import APPROVE_ACTION, REJECT_ACTION
from tests.slack_stack import (
    APPROVERS,
    ARJUN,
    GONE,
    GOOD_VALUES,
    HELPER_BOT,
    JANE,
    LIN,
    MAYA,
    OMAR,
    TEAM,
    Stack,
)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"amount": "ten"}, "amount", "is not a number"),
        ({"amount": "0"}, "amount", "more than zero"),
        ({"amount": "-5"}, "amount", "is not a number"),
        ({"amount": "25.001"}, "amount", "at most 2 decimal places"),
        ({"amount": "501"}, "amount", "5 to 500 GBP"),
        ({"amount": "$25"}, "amount", "in GBP, not USD"),
        ({"card": "sandbox:SBX-COFFEE-USD", "amount": "20"}, "amount", "10, 25, 50 USD"),
        ({"recipient": MAYA}, "recipient", "cannot reward yourself"),
        ({"recipient": HELPER_BOT}, "recipient", "Bots cannot receive rewards"),
        ({"recipient": GONE}, "recipient", "deactivated"),
        ({"message": "   "}, "message", "Say what the reward is for"),
    ],
)
async def test_invalid_submission_is_refused_inline_and_nothing_is_stored(
    stack: Stack, changes: dict[str, Any], field: str, message: str
) -> None:
    await stack.request_reward({**GOOD_VALUES, **changes})
    errors = stack.ws.view_errors(MAYA)
    assert message in errors.get(field, ""), errors
    assert stack.ws.current_view(MAYA) is not None  # the modal stays open to fix the field
    await _assert_nothing_stored(stack)


async def test_forged_submission_with_empty_fields_names_each_field(stack: Stack) -> None:
    await stack.emulator.driver.slash_command(MAYA, TEAM)
    await stack.emulator.wait_for(lambda: stack.ws.current_view(MAYA), 5, "the modal")
    await stack.emulator.driver.submit_view(MAYA, {"card": "sandbox:NOT-OFFERED"}, strict=False)
    errors = stack.ws.view_errors(MAYA)
    assert set(errors) == {"recipient", "card", "message"}, errors
    assert "no longer offered" in errors["card"]
    await _assert_nothing_stored(stack)


async def _assert_nothing_stored(stack: Stack) -> None:
    with pytest.raises(RequestNotFound):
        await stack.runtime.store.get(1)
    assert not stack.ws.messages(TEAM)
    assert not any(stack.ws.dm_messages(a) for a in APPROVERS)


async def _pending_request(stack: Stack, requester: str = MAYA, recipient: str = JANE) -> None:
    await stack.request_reward({**GOOD_VALUES, "recipient": recipient}, requester=requester)
    await stack.emulator.wait_for(
        lambda: all(stack.ws.dm_messages(a) for a in APPROVERS if a != requester),
        5,
        "approval cards",
    )


async def test_non_approver_click_is_refused_privately(stack: Stack) -> None:
    await _pending_request(stack)
    card = stack.approval_card(ARJUN)
    # Omar sees a copy of the card (say it was forwarded into the channel) and clicks it.
    copy = stack.ws.post(stack.ws.resolve_channel(TEAM), OMAR, card.text, card.blocks, None)  # type: ignore[arg-type]
    for action in (APPROVE_ACTION, REJECT_ACTION):
        await stack.click(OMAR, copy, action)
    await stack.emulator.wait_for(lambda: len(stack.ws.ephemerals(OMAR)) == 2, 5, "refusals")
    assert all("Only a configured approver" in e.text for e in stack.ws.ephemerals(OMAR))
    assert (await stack.runtime.store.get(1)).status is Status.PENDING_APPROVAL
    assert stack.ws.current_view(OMAR) is None


async def test_requester_who_is_an_approver_cannot_decide_their_own_request(
    stack: Stack,
) -> None:
    await _pending_request(stack, requester=ARJUN)  # Arjun asks; only Lin gets a card
    assert not [m for m in stack.ws.dm_messages(ARJUN) if "asks you to approve" in m.text]
    await _pending_request(stack, requester=MAYA)  # request #2: Arjun gets a card for it
    card = stack.approval_card(ARJUN)
    await stack.click(ARJUN, card, APPROVE_ACTION, value="1")  # forged: names request #1
    await stack.emulator.wait_for(lambda: stack.refusals(ARJUN), 5, "the refusal")
    assert "your own reward request" in stack.refusals(ARJUN)[0]
    assert (await stack.runtime.store.get(1)).status is Status.PENDING_APPROVAL


@pytest.mark.parametrize("forged", ["999", "abc", "", "1; DROP TABLE reward_requests"])
async def test_forged_button_values_change_nothing(stack: Stack, forged: str) -> None:
    await _pending_request(stack)
    await stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION, value=forged)
    await stack.emulator.wait_for(lambda: stack.ws.ephemerals(ARJUN), 5, "the refusal")
    assert (await stack.runtime.store.get(1)).status is Status.PENDING_APPROVAL
    assert stack.sandbox.order_count == 0


async def test_first_decision_wins_among_concurrent_clicks(stack: Stack) -> None:
    await _pending_request(stack)
    arjun, lin = stack.approval_card(ARJUN), stack.approval_card(LIN)
    await asyncio.gather(
        stack.click(ARJUN, arjun, APPROVE_ACTION),
        stack.click(ARJUN, arjun, APPROVE_ACTION),  # a double-click
        stack.click(LIN, lin, APPROVE_ACTION),
    )
    await stack.emulator.wait_for_dm(JANE, "sent you a reward")
    await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 10)
    request = await stack.runtime.store.get(1)
    assert request.status is Status.FULFILLED
    assert stack.sandbox.order_count == 1
    assert len(stack.ws.dm_messages(JANE)) == 1
    losers = stack.ws.ephemerals(ARJUN) + stack.ws.ephemerals(LIN)
    assert len(losers) == 2
    for loser in losers:
        if loser.user == request.decided_by:  # the winner's own double-click
            assert "You already approved reward #1" in loser.text
        else:
            assert f"already approved by <@{request.decided_by}>" in loser.text
    # The cards no longer offer buttons, so nobody can click again.
    with pytest.raises(EmulatorError):
        await stack.emulator.driver.click_button(LIN, lin.channel, lin.ts, APPROVE_ACTION)


async def test_reject_with_reason_is_reported_everywhere_and_escaped(stack: Stack) -> None:
    await _pending_request(stack)
    summary = stack.ws.messages(TEAM)[0]
    await stack.click(ARJUN, stack.approval_card(ARJUN), REJECT_ACTION)
    view = await stack.emulator.wait_for(lambda: stack.ws.current_view(ARJUN), 5, "reject modal")
    assert view["callback_id"] == "reject_reason"
    await stack.emulator.driver.submit_view(ARJUN, {"reason": "Over budget <!channel>"})
    await stack.emulator.wait_for_dm(MAYA, "was rejected")
    request = await stack.runtime.store.get(1)
    assert (request.status, request.decided_by) == (Status.REJECTED, ARJUN)
    assert request.decision_reason == "Over budget <!channel>"
    reply = stack.ws.thread_replies(TEAM, summary.ts)[-1].text
    assert f"Rejected by <@{ARJUN}>" in reply
    assert "Over budget &lt;!channel&gt;" in reply and "<!channel>" not in reply
    assert APPROVE_ACTION not in str(stack.approval_card(LIN).blocks)
    # Lin clicks her (now stale) card too late: the buttons are gone.
    with pytest.raises(EmulatorError):
        await stack.click(LIN, stack.approval_card(LIN), APPROVE_ACTION)
    assert stack.sandbox.order_count == 0


async def test_reject_after_approval_is_refused_in_the_modal(stack: Stack) -> None:
    await _pending_request(stack)
    await stack.click(LIN, stack.approval_card(LIN), REJECT_ACTION)
    await stack.emulator.wait_for(lambda: stack.ws.current_view(LIN), 5, "reject modal")
    await stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION)
    await stack.emulator.wait_for_dm(JANE, "sent you a reward")
    await stack.emulator.driver.submit_view(LIN, {"reason": "no"})
    assert "already approved" in stack.ws.view_errors(LIN)["reason"]
    # The DM goes out before the request is marked fulfilled: wait for that, not assume it.
    await stack.wait_status(1, Status.FULFILLED)


async def test_user_text_cannot_inject_mentions_or_links(stack: Stack) -> None:
    hostile = "<!channel> <@U0ARJUN> <https://evil.example|click> & more"
    await stack.request_reward({**GOOD_VALUES, "message": hostile})
    summary = await stack.emulator.wait_for_message(TEAM, "Reward #1")
    shown = str(summary.blocks)
    assert "&lt;!channel&gt;" in shown and "<!channel>" not in shown
    assert "<https://evil.example" not in shown and "&amp; more" in shown


async def test_forged_submission_without_an_amount_is_refused(stack: Stack) -> None:
    await stack.emulator.driver.slash_command(MAYA, TEAM)
    await stack.emulator.wait_for(lambda: stack.ws.current_view(MAYA), 5, "the modal")
    await stack.emulator.driver.submit_view(MAYA, {**GOOD_VALUES, "amount": None}, strict=False)
    assert stack.ws.view_errors(MAYA) == {"amount": "Enter an amount."}
    await _assert_nothing_stored(stack)
