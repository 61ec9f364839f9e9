"""The whole flow, driven as Slack drives it: /reward → modal → approval → order → delivery."""

from __future__ import annotations

import re

import pytest

from bot.domain import Status
from bot.offline.emulator import SlackEmulator
from bot.offline.local import running_bot
from bot.slack.ids import APPROVE_ACTION
from providers.sandbox import SandboxProvider
from tests.slack_stack import (
    APPROVERS,
    ARJUN,
    GOOD_VALUES,
    JANE,
    LIN,
    MAYA,
    TEAM,
    Stack,
)

LINK = re.compile(r"https://sandbox\.rewardbot\.invalid/redeem/\w+")


async def test_reward_is_approved_ordered_and_delivered_privately(
    emulator: SlackEmulator,
    database: str,
    sandbox: SandboxProvider,
    transport: str,
    no_secrets_in_logs: pytest.LogCaptureFixture,
) -> None:
    async with running_bot(
        emulator,
        database=database,
        approvers=APPROVERS,
        providers={"sandbox": sandbox},
        socket_mode=transport == "socket",
    ) as runtime:
        stack = Stack(emulator, runtime, sandbox)
        ws = stack.ws

        # 1. /reward with prefilled text opens the modal with those values.
        await emulator.driver.slash_command(MAYA, TEAM, text=f"<@{JANE}|jane> 25 for shipping it")
        view = await emulator.wait_for(lambda: ws.current_view(MAYA), 5, "the modal")
        elements = {b["block_id"]: b.get("element", {}) for b in view["blocks"]}
        assert elements["recipient"]["initial_user"] == JANE
        assert elements["amount"]["initial_value"] == "25"
        assert elements["message"]["initial_value"] == "shipping it"
        offered = {o["value"] for o in elements["card"]["options"]}
        assert "sandbox:SBX-BOOKS-GBP" in offered and "sandbox:SBX-COFFEE-USD" in offered

        # 2. Submitting closes the modal and posts the summary in the channel.
        await emulator.driver.submit_view(MAYA, {"card": "sandbox:SBX-BOOKS-GBP"})
        assert ws.current_view(MAYA) is None
        summary = await emulator.wait_for_message(TEAM, "Reward #1")
        assert "Waiting for approval" in str(summary.blocks)

        # 3. Each approver gets a card with Approve / Reject; the requester does not.
        await emulator.wait_for(lambda: len(ws.dm_messages(LIN)) == 1, 5, "Lin's card")
        card = stack.approval_card(ARJUN)
        assert "25.00 GBP" in card.text
        assert not [m for m in ws.dm_messages(MAYA) if "asks you to approve" in m.text]

        # 4. Arjun approves; the order is placed, completes asynchronously and is delivered.
        await stack.click(ARJUN, card, APPROVE_ACTION)
        delivery = await emulator.wait_for_dm(JANE, "sent you a reward")
        link = LINK.search(str(delivery.blocks))
        assert link is not None
        await emulator.wait_for(
            lambda: "Delivered" in str(ws.find_message(TEAM, summary.ts).blocks),  # type: ignore[union-attr]
            5,
            "the summary to show delivered",
        )
        await emulator.wait_for_dm(MAYA, "was delivered")

        # 5. Thread: one reply per step, none with the link.
        replies = [m.text for m in ws.thread_replies(TEAM, summary.ts)]
        assert len(replies) == 3, replies
        assert "Waiting for an approver" in replies[0]
        assert f"Approved by <@{ARJUN}>" in replies[1]
        assert "Delivered" in replies[2]
        # The link is in Jane's DM and nowhere else in the workspace.
        assert link.group(0) not in stack.everything_visible_outside(JANE)

        # 6. Every approval card shows the decision and has no buttons left.
        for approver in APPROVERS:
            blocks = str(stack.approval_card(approver).blocks)
            assert APPROVE_ACTION not in blocks
            assert f"Approved by <@{ARJUN}>" in blocks

        # 7. Exactly one order; the state machine and audit trail are persisted.
        assert sandbox.order_count == 1
        request = await runtime.store.get(1)
        assert request.status is Status.FULFILLED
        assert request.decided_by == ARJUN
        assert request.charged is not None and str(request.charged) == "23.75 GBP"
        transitions = [
            (e.from_status, e.to_status, e.actor)
            for e in await runtime.store.events(1)
            if e.kind == "transition"
        ]
        assert transitions == [
            (Status.PENDING_APPROVAL, Status.APPROVED, ARJUN),
            (Status.APPROVED, Status.ORDERING, "rewardbot"),
            (Status.ORDERING, Status.FULFILLED, "rewardbot"),
        ]


async def test_a_failed_order_is_reported_and_nothing_is_delivered(stack: Stack) -> None:
    await stack.request_and_approve({**GOOD_VALUES, "amount": "10.92"})  # sandbox: out of stock
    summary = await stack.emulator.wait_for_message(TEAM, "Reward #1")
    await stack.emulator.wait_for_dm(MAYA, "failed")
    request = await stack.runtime.store.get(1)
    assert request.status is Status.FAILED
    assert request.failure_reason is not None and "out of stock" in request.failure_reason
    replies = [m.text for m in stack.ws.thread_replies(TEAM, summary.ts)]
    assert any("Failed" in r and "out of stock" in r for r in replies), replies
    assert not stack.ws.dm_messages(JANE)
    assert stack.sandbox.order_count == 0


async def test_an_order_that_fails_after_acceptance_is_reported(stack: Stack) -> None:
    await stack.request_and_approve({**GOOD_VALUES, "amount": "10.94"})  # sandbox: fails async
    await stack.emulator.wait_for_dm(MAYA, "failed")
    request = await stack.runtime.store.get(1)
    assert request.status is Status.FAILED
    assert request.provider_order_id is not None
    assert not stack.ws.dm_messages(JANE)
    assert stack.sandbox.order_count == 1
