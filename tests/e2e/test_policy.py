"""The approval policy file, through the real handlers: routing, two-step approval, limits,
budgets reserved and released, reminders, expiry and cancellation.

Workspace and policy: ``tests.support.policy_stack`` (team ``eng`` is the Slack user group
S0ENG of Maya, Jane and Arjun, managed by Arjun; Lin is the default approver; Finn is finance,
user group S0FINANCE; Omar is in no team).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.domain import Status
from bot.offline.emulator import SlackEmulator
from bot.offline.emulator.workspace import Message
from bot.slack.ids import APPROVE_ACTION, CANCEL_ACTION, REJECT_ACTION, RETRY_ACTION
from tests.slack_stack import (
    ARJUN,
    GOOD_VALUES,
    JANE,
    LIN,
    MAYA,
    OMAR,
    TEAM,
    Stack,
)
from tests.support import (
    APPROVALS_CHANNEL,
    ENG_GROUP,
    FINN,
    POLICY,
    all_requests,
    policy_stack,
    rewardbot,
    submit_request,
    top_level,
)


@pytest.fixture
async def stack(emulator: SlackEmulator, database: str, tmp_path: Path) -> AsyncIterator[Stack]:
    async with policy_stack(emulator, database, tmp_path) as started:
        yield started


def has_buttons(message: Message) -> bool:
    return any(block.get("type") == "actions" for block in message.blocks or [])


def cards(stack: Stack, approver: str) -> list[Message]:
    return [m for m in stack.ws.dm_messages(approver) if "asks you to approve" in m.text]


async def refusal(stack: Stack, user: str) -> str:
    await stack.emulator.wait_for(lambda: stack.refusals(user), 5, f"{user}'s refusal")
    return stack.refusals(user)[-1]


# -- who approves ----------------------------------------------------------------------------


async def test_team_member_request_goes_to_their_manager_only(stack: Stack) -> None:
    request_id = await submit_request(stack, MAYA)
    assert [c.approver_id for c in await stack.runtime.store.approval_cards(request_id)] == [ARJUN]
    assert not cards(stack, LIN)
    request_ = await stack.runtime.store.get(request_id)
    assert request_.team == "eng"
    # Lin approves other requests, but this one is the eng managers' to decide.
    copy = stack.ws.post(
        stack.ws.resolve_channel(TEAM), LIN, "fwd", cards(stack, ARJUN)[0].blocks, None
    )  # type: ignore[arg-type]
    await stack.click(LIN, copy, APPROVE_ACTION)
    assert "for the managers of team eng" in await refusal(stack, LIN)
    assert await stack.status(request_id) is Status.PENDING_APPROVAL
    await stack.click(ARJUN, cards(stack, ARJUN)[0], APPROVE_ACTION)
    await stack.wait_status(request_id, Status.FULFILLED)


async def test_outsider_and_manager_requests_go_to_the_default_approvers(stack: Stack) -> None:
    outsider = await submit_request(stack, OMAR)
    assert (await stack.runtime.store.get(outsider)).team is None
    manager_own = await submit_request(stack, ARJUN)  # Arjun cannot approve his own request
    for request_id in (outsider, manager_own):
        assert [c.approver_id for c in await stack.runtime.store.approval_cards(request_id)] == [
            LIN
        ]


async def test_a_manager_who_is_the_recipient_does_not_approve_it(stack: Stack) -> None:
    request_id = await submit_request(stack, MAYA, recipient=ARJUN)
    assert [c.approver_id for c in await stack.runtime.store.approval_cards(request_id)] == [LIN]
    # Arjun forges a click on the request (a button from another card, value rewritten).
    other = await submit_request(stack, JANE, recipient=MAYA)
    await stack.click(ARJUN, cards(stack, ARJUN)[-1], APPROVE_ACTION, value=str(request_id))
    assert "a reward that is for you" in await refusal(stack, ARJUN)
    assert await stack.status(request_id) is Status.PENDING_APPROVAL
    assert await stack.status(other) is Status.PENDING_APPROVAL


async def test_nobody_approves_their_own_request_even_by_forging(stack: Stack) -> None:
    own = await submit_request(stack, ARJUN, recipient=JANE)
    await submit_request(stack, MAYA)
    await stack.click(ARJUN, cards(stack, ARJUN)[-1], APPROVE_ACTION, value=str(own))
    assert "your own reward request" in await refusal(stack, ARJUN)
    assert await stack.status(own) is Status.PENDING_APPROVAL


async def test_team_membership_follows_the_slack_user_group(stack: Stack) -> None:
    stack.ws.set_usergroup_members(ENG_GROUP, [JANE, ARJUN])  # Maya leaves eng
    # The bot remembers a group's members for a minute; this test does not wait that long.
    stack.runtime.policy._directory._cache.clear()
    request_id = await submit_request(stack, MAYA)
    assert (await stack.runtime.store.get(request_id)).team is None
    assert [c.approver_id for c in await stack.runtime.store.approval_cards(request_id)] == [LIN]


async def test_self_rewards_only_where_the_policy_allows_them(stack: Stack) -> None:
    await stack.request_reward({**GOOD_VALUES, "recipient": MAYA}, requester=MAYA)
    assert "cannot reward yourself" in stack.ws.view_errors(MAYA)["recipient"]


async def test_allowed_self_reward_is_still_approved_by_someone_else(
    emulator: SlackEmulator, database: str, tmp_path: Path
) -> None:
    policy = POLICY.replace("[approvals]", "[approvals]\nallow_self_reward = true")
    async with policy_stack(emulator, database, tmp_path, policy) as stack:
        request_id = await submit_request(stack, ARJUN, recipient=ARJUN)
        assert [c.approver_id for c in await stack.runtime.store.approval_cards(request_id)] == [
            LIN
        ]
        await stack.click(LIN, cards(stack, LIN)[0], APPROVE_ACTION)
        await stack.wait_status(request_id, Status.FULFILLED)


# -- two approvals ----------------------------------------------------------------------------


async def test_above_the_threshold_a_second_approval_from_finance_is_needed(stack: Stack) -> None:
    request_id = await submit_request(stack, MAYA, amount="150")
    await stack.click(ARJUN, cards(stack, ARJUN)[0], APPROVE_ACTION)
    await stack.wait_status(request_id, Status.AWAITING_SECOND_APPROVAL)
    await stack.emulator.wait_for(lambda: cards(stack, FINN), 5, "finance's card")
    assert stack.sandbox.order_count == 0
    # The first approver cannot give the second approval too, nor can a non-finance approver.
    await stack.click(ARJUN, cards(stack, ARJUN)[0], APPROVE_ACTION)
    assert "the second must come from a different approver" in await refusal(stack, ARJUN)
    copy = stack.ws.post(
        stack.ws.resolve_channel(TEAM), LIN, "fwd", cards(stack, FINN)[0].blocks, None
    )  # type: ignore[arg-type]
    await stack.click(LIN, copy, APPROVE_ACTION)
    assert "second approval from the finance approvers" in await refusal(stack, LIN)
    assert stack.sandbox.order_count == 0
    await stack.click(FINN, cards(stack, FINN)[0], APPROVE_ACTION)
    await stack.wait_status(request_id, Status.FULFILLED)
    assert stack.sandbox.order_count == 1
    stored = await stack.runtime.store.get(request_id)
    assert (stored.first_approved_by, stored.decided_by) == (ARJUN, FINN)
    events = await stack.runtime.store.events(request_id)
    assert [(e.to_status, e.actor) for e in events if e.to_status][:3] == [
        (Status.PENDING_APPROVAL, MAYA),
        (Status.AWAITING_SECOND_APPROVAL, ARJUN),
        (Status.APPROVED, FINN),
    ]
    summary = stack.ws.messages(TEAM)[0]
    replies = " ".join(m.text for m in stack.ws.thread_replies(TEAM, summary.ts))
    assert "First approval by <@U0ARJUN>" in replies


async def test_finance_can_reject_at_the_second_step(stack: Stack) -> None:
    request_id = await submit_request(stack, MAYA, amount="150")
    await stack.click(ARJUN, cards(stack, ARJUN)[0], APPROVE_ACTION)
    await stack.emulator.wait_for(lambda: cards(stack, FINN), 5, "finance's card")
    await stack.click(FINN, cards(stack, FINN)[0], REJECT_ACTION)
    await stack.emulator.wait_for(lambda: stack.ws.current_view(FINN), 5, "the reason modal")
    await stack.emulator.driver.submit_view(FINN, {"reason": "Over the quarterly plan"})
    await stack.wait_status(request_id, Status.REJECTED)
    assert stack.sandbox.order_count == 0


async def test_at_or_below_the_threshold_one_approval_is_enough(stack: Stack) -> None:
    request_id = await submit_request(stack, MAYA, amount="100")
    await stack.click(ARJUN, cards(stack, ARJUN)[0], APPROVE_ACTION)
    await stack.wait_status(request_id, Status.FULFILLED)
    assert not cards(stack, FINN)


async def test_without_a_finance_group_the_second_approver_is_another_approver(
    emulator: SlackEmulator, database: str, tmp_path: Path
) -> None:
    policy = POLICY.replace('second_approvers = ["S0FINANCE"]\n', "")
    async with policy_stack(emulator, database, tmp_path, policy) as stack:
        request_id = await submit_request(stack, MAYA, amount="150")
        await stack.click(ARJUN, cards(stack, ARJUN)[0], APPROVE_ACTION)
        await stack.emulator.wait_for(lambda: cards(stack, LIN), 5, "Lin's card")
        await stack.click(LIN, cards(stack, LIN)[0], APPROVE_ACTION)
        await stack.wait_status(request_id, Status.FULFILLED)


async def test_the_only_possible_second_approver_cannot_give_the_first(
    emulator: SlackEmulator, database: str, tmp_path: Path
) -> None:
    """Arjun and Lin manage eng; only Arjun may give second approvals. If Arjun approved
    first, nobody could give the second, so he must wait for Lin's first approval."""
    policy = POLICY.replace('managers = ["U0ARJUN"]', 'managers = ["U0ARJUN", "U0LIN"]').replace(
        'second_approvers = ["S0FINANCE"]', 'second_approvers = ["U0ARJUN"]'
    )
    async with policy_stack(emulator, database, tmp_path, policy) as stack:
        request_id = await submit_request(stack, MAYA, amount="150")
        await stack.click(ARJUN, cards(stack, ARJUN)[0], APPROVE_ACTION)
        assert "only you can give the second" in await refusal(stack, ARJUN)
        assert await stack.status(request_id) is Status.PENDING_APPROVAL
        await stack.click(LIN, cards(stack, LIN)[0], APPROVE_ACTION)
        await stack.wait_status(request_id, Status.AWAITING_SECOND_APPROVAL)
        await stack.click(ARJUN, cards(stack, ARJUN)[0], APPROVE_ACTION)
        await stack.wait_status(request_id, Status.FULFILLED)


async def test_two_approvals_needed_but_only_one_approver_possible_is_refused_inline(
    emulator: SlackEmulator, database: str, tmp_path: Path
) -> None:
    # Omar's requests go to Lin alone, and there is nobody else to give a second approval.
    policy = POLICY.replace('second_approvers = ["S0FINANCE"]\n', "")
    async with policy_stack(emulator, database, tmp_path, policy) as stack:
        await stack.request_reward({**GOOD_VALUES, "amount": "150"}, requester=OMAR)
        assert "need a second approver" in stack.ws.view_errors(OMAR)["amount"]


# -- limits and budgets ------------------------------------------------------------------------


async def test_the_hard_maximum_is_refused_inline(stack: Stack) -> None:
    await stack.request_reward({**GOOD_VALUES, "amount": "450"}, requester=OMAR)
    assert "at most 400.00 GBP" in stack.ws.view_errors(OMAR)["amount"]


async def test_other_currencies_are_converted_or_refused_without_a_rate(stack: Stack) -> None:
    request_id = await submit_request(stack, OMAR, card="sandbox:SBX-COFFEE-USD", amount="50")
    budget = (await stack.runtime.store.get(request_id)).budget_amount
    assert budget is not None and str(budget) == "40.00 GBP"
    await stack.request_reward(
        {**GOOD_VALUES, "card": "sandbox:SBX-TRAVEL-EUR", "amount": "30"}, requester=OMAR
    )
    assert "No exchange rate from EUR to GBP" in stack.ws.view_errors(OMAR)["amount"]


async def test_budget_refusal_shows_what_is_left_and_release_frees_it(stack: Stack) -> None:
    first = await submit_request(stack, MAYA, amount="250")  # reserved: 50 of 300 left
    await stack.request_reward({**GOOD_VALUES, "recipient": MAYA, "amount": "60"}, requester=JANE)
    errors = stack.ws.view_errors(JANE)
    assert "team eng's" in errors["amount"]
    assert "50.00 GBP left of 300.00 GBP" in errors["amount"]
    # Rejecting the first request releases its 250.
    await stack.click(ARJUN, cards(stack, ARJUN)[0], REJECT_ACTION)
    await stack.emulator.wait_for(lambda: stack.ws.current_view(ARJUN), 5, "the reason modal")
    await stack.emulator.driver.submit_view(ARJUN, {"reason": ""})
    await stack.wait_status(first, Status.REJECTED)
    await stack.emulator.driver.submit_view(
        JANE, {**GOOD_VALUES, "recipient": MAYA, "amount": "60"}
    )
    assert stack.ws.current_view(JANE) is None, stack.ws.view_errors(JANE)


async def test_a_failed_order_releases_its_budget(stack: Stack) -> None:
    failing = await submit_request(stack, MAYA, amount="90.93")  # sandbox: insufficient funds
    await stack.click(ARJUN, cards(stack, ARJUN)[0], APPROVE_ACTION)
    await stack.wait_status(failing, Status.FAILED)
    await submit_request(stack, MAYA, amount="290")  # fits only because the 90.93 was released


async def test_fulfilled_rewards_keep_counting(stack: Stack) -> None:
    done = await submit_request(stack, MAYA, amount="100")
    await stack.click(ARJUN, cards(stack, ARJUN)[0], APPROVE_ACTION)
    await stack.wait_status(done, Status.FULFILLED)
    await stack.request_reward({**GOOD_VALUES, "amount": "201"}, requester=MAYA)
    assert "200.00 GBP left of 300.00 GBP" in stack.ws.view_errors(MAYA)["amount"]


async def test_per_requester_budget(emulator: SlackEmulator, database: str, tmp_path: Path) -> None:
    policy = POLICY + '\n[budgets]\nper_requester_monthly = "70"\n'
    async with policy_stack(emulator, database, tmp_path, policy) as stack:
        await submit_request(stack, OMAR, amount="50")
        await stack.request_reward({**GOOD_VALUES, "amount": "25"}, requester=OMAR)
        refused = stack.ws.view_errors(OMAR)["amount"]
        assert refused.startswith("This would take your ")
        assert "20.00 GBP left of 70.00 GBP" in refused


async def test_simultaneous_requests_cannot_both_take_the_last_of_a_budget(
    stack: Stack,
) -> None:
    """Both modals are open at once and submitted together; only one fits in 300."""
    for user in (MAYA, JANE):
        await stack.emulator.driver.slash_command(user, TEAM)
        await stack.emulator.wait_for(lambda u=user: stack.ws.current_view(u), 5, "modal")
    await asyncio.gather(
        stack.emulator.driver.submit_view(MAYA, {**GOOD_VALUES, "amount": "200"}),
        stack.emulator.driver.submit_view(
            JANE, {**GOOD_VALUES, "recipient": MAYA, "amount": "200"}
        ),
    )
    stored = await all_requests(stack)
    assert len(stored) == 1
    loser = JANE if stored[0].requester_id == MAYA else MAYA
    assert "100.00 GBP left of 300.00 GBP" in stack.ws.view_errors(loser)["amount"]


# -- cancel, remind, expire --------------------------------------------------------------------


async def test_requester_cancels_from_the_thread_and_only_they_can(stack: Stack) -> None:
    request_id = await submit_request(stack, MAYA, amount="250")
    summary = stack.ws.messages(TEAM)[0]
    await stack.click(JANE, summary, CANCEL_ACTION)
    assert "Only the person who asked for this reward can cancel it" in await refusal(stack, JANE)
    await stack.click(MAYA, summary, CANCEL_ACTION)
    await stack.wait_status(request_id, Status.CANCELLED)
    await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
    replies = " ".join(m.text for m in stack.ws.thread_replies(TEAM, summary.ts))
    assert "Cancelled by the requester" in replies
    # The approver's card and the summary no longer offer any button.
    assert not has_buttons(cards(stack, ARJUN)[0])
    assert not has_buttons(stack.ws.messages(TEAM)[0])
    # The 250 it reserved is free again.
    await submit_request(stack, JANE, recipient=MAYA, amount="250")


async def test_reminder_then_expiry_releases_the_budget(
    emulator: SlackEmulator, database: str, tmp_path: Path
) -> None:
    policy = POLICY.replace(
        'max_amount = "400"',
        'max_amount = "400"\nremind_after_hours = 0.0003\nexpire_after_hours = 0.0008',
    )
    async with policy_stack(emulator, database, tmp_path, policy) as stack:
        request_id = await submit_request(stack, MAYA, amount="250")
        await stack.emulator.wait_for_dm(ARJUN, "Reminder: reward #1")
        await stack.wait_status(request_id, Status.EXPIRED, seconds=10)
        await stack.emulator.wait_for_dm(MAYA, "expired")
        summary = stack.ws.messages(TEAM)[0]
        await stack.emulator.wait_for(
            lambda: any("Expired" in m.text for m in stack.ws.thread_replies(TEAM, summary.ts)),
            5,
            "the expiry in the thread",
        )
        kinds = [e.kind for e in await stack.runtime.store.events(request_id)]
        assert kinds == ["created", "reminder", "transition"]
        assert not has_buttons(cards(stack, ARJUN)[0])
        await submit_request(stack, MAYA, amount="250")  # the expired request's 250 is free again
        assert stack.sandbox.order_count == 0


async def test_approvals_channel_gets_one_card_any_approver_decides(
    emulator: SlackEmulator, database: str, tmp_path: Path
) -> None:
    policy = POLICY.replace(
        'default_approvers = ["U0LIN"]',
        f'default_approvers = ["U0LIN"]\nchannel = "{APPROVALS_CHANNEL}"',
    )
    async with policy_stack(emulator, database, tmp_path, policy) as stack:
        request_id = await submit_request(stack, MAYA, amount="150")
        posted = top_level(stack, APPROVALS_CHANNEL)
        assert len(posted) == 1 and not cards(stack, ARJUN)
        await stack.click(ARJUN, posted[0], APPROVE_ACTION)
        await stack.wait_status(request_id, Status.AWAITING_SECOND_APPROVAL)
        await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
        assert len(top_level(stack, APPROVALS_CHANNEL)) == 1  # the same card, updated
        card = top_level(stack, APPROVALS_CHANNEL)[0]
        nudges = stack.ws.thread_replies(APPROVALS_CHANNEL, card.ts)
        assert any(f"<@{FINN}>" in m.text and "needs a second" in m.text for m in nudges)
        await stack.click(FINN, top_level(stack, APPROVALS_CHANNEL)[0], APPROVE_ACTION)
        await stack.wait_status(request_id, Status.FULFILLED)


# -- report and export -------------------------------------------------------------------------


async def test_report_shows_approvers_the_month_per_team_privately(stack: Stack) -> None:
    done = await submit_request(stack, MAYA, amount="40")
    await stack.click(ARJUN, cards(stack, ARJUN)[0], APPROVE_ACTION)
    await stack.wait_status(done, Status.FULFILLED)
    await submit_request(stack, JANE, recipient=MAYA, amount="60")  # reserved
    await submit_request(stack, OMAR, amount="25")  # no team
    await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
    in_channel = len(stack.ws.messages(TEAM))
    await stack.emulator.driver.slash_command(ARJUN, TEAM, text="report")
    report = stack.ws.ephemerals(ARJUN)[-1].text
    eng = "*eng*: 40.00 GBP spent, 60.00 GBP awaiting approval or delivery, 200.00 GBP left"
    assert f"{eng} of 300.00 GBP" in report
    assert "*(no team)*: 0.00 GBP spent, 25.00 GBP awaiting" in report
    await stack.emulator.driver.slash_command(MAYA, TEAM, text="report")
    assert "Only approvers" in stack.ws.ephemerals(MAYA)[-1].text
    assert len(stack.ws.messages(TEAM)) == in_channel  # nothing public
    assert stack.ws.current_view(ARJUN) is None and stack.ws.current_view(MAYA) is None


async def test_export_writes_decisions_amounts_and_permalinks(stack: Stack, database: str) -> None:
    approved = await submit_request(stack, MAYA, amount="150")
    await stack.click(ARJUN, cards(stack, ARJUN)[0], APPROVE_ACTION)
    await stack.emulator.wait_for(lambda: cards(stack, FINN), 5, "finance's card")
    await stack.click(FINN, cards(stack, FINN)[0], APPROVE_ACTION)
    await stack.wait_status(approved, Status.FULFILLED)
    rejected = await submit_request(stack, OMAR, card="sandbox:SBX-COFFEE-USD", amount="25")
    await stack.click(LIN, cards(stack, LIN)[-1], REJECT_ACTION)
    await stack.emulator.wait_for(lambda: stack.ws.current_view(LIN), 5, "the reason modal")
    await stack.emulator.driver.submit_view(LIN, {"reason": '=HYPERLINK("http://x")'})
    await stack.wait_status(rejected, Status.REJECTED)
    await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)

    today = datetime.now(UTC).date().isoformat()
    rows = list(
        csv.DictReader(io.StringIO(await export(database, "--since", today, "--format", "csv")))
    )
    assert [r["id"] for r in rows] == [str(approved), str(rejected)]
    first, second = rows
    assert (first["status"], first["team"], first["amount"], first["currency"]) == (
        "fulfilled",
        "eng",
        "150.00",
        "GBP",
    )
    assert (first["first_approved_by"], first["decided_by"]) == (ARJUN, FINN)
    assert first["charged_amount"] and first["provider"] == "sandbox"
    assert first["delivered_at"] and first["decided_at"]
    assert (
        first["permalink"].startswith("https://") and "/archives/C0TEAMWINS/p" in first["permalink"]
    )
    assert (second["status"], second["currency"], second["budget_amount"]) == (
        "rejected",
        "USD",
        "20.00",
    )
    assert second["decision_reason"] == '\'=HYPERLINK("http://x")'  # not a live formula

    exported = json.loads(
        await export(database, "--since", today, "--until", today, "--format", "json")
    )
    trail = exported[1]["events"]
    assert trail[-1]["to_status"] == "rejected" and trail[-1]["actor"] == LIN
    assert trail[-1]["detail"] == {"reason": '=HYPERLINK("http://x")'}
    assert (
        await export(database, "--since", "2000-01-01", "--until", "2000-01-31", "--format", "json")
        == "[]\n"
    )


async def export(database: str, *args: str) -> str:
    """``rewardbot export`` as an admin runs it: a separate process reading ``database`` while
    the bot keeps running."""
    process = await rewardbot(
        "export",
        *args,
        env={**os.environ, "REWARDBOT_DATABASE": database},
        stdout=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode()


def test_export_refuses_bad_dates_clearly(tmp_path: Path) -> None:
    env = {**os.environ, "REWARDBOT_DATABASE": str(tmp_path / "none.db")}
    for args, message in [
        (["--since", "2026-13-01"], "'2026-13-01' is not a date like 2026-11-01"),
        (["--since", "2026-11-02", "--until", "2026-11-01"], "--until 2026-11-01 is before"),
        (["--since", "2026-11-01"], "No database at"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "bot", "export", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2 and message in done.stderr, done.stderr


async def test_a_retry_reserves_the_budget_again_or_is_refused(stack: Stack) -> None:
    failing = await submit_request(stack, MAYA, amount="90.93")  # sandbox: insufficient funds
    await stack.click(ARJUN, cards(stack, ARJUN)[0], APPROVE_ACTION)
    await stack.wait_status(failing, Status.FAILED)
    await submit_request(stack, JANE, recipient=MAYA, amount="250")  # 90.93 was released
    await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
    await stack.click(ARJUN, cards(stack, ARJUN)[0], RETRY_ACTION)
    refused = await refusal(stack, ARJUN)
    assert "Cannot retry reward #1" in refused and "50.00 GBP left of 300.00 GBP" in refused
    assert await stack.status(failing) is Status.FAILED


async def test_status_history_is_for_the_requests_own_approvers(stack: Stack) -> None:
    await submit_request(stack, MAYA, amount="40")  # one approval: finance has no part in it
    await stack.emulator.driver.slash_command(FINN, TEAM, text="status 1")
    await stack.emulator.wait_for(lambda: stack.ws.ephemerals(FINN), 5, "Finn's answer")
    assert "no reward request #1 that you can see" in stack.ws.ephemerals(FINN)[-1].text
    await stack.emulator.driver.slash_command(ARJUN, TEAM, text="status 1")
    await stack.emulator.wait_for(lambda: stack.ws.ephemerals(ARJUN), 5, "Arjun's answer")
    assert ":memo: Requested" in stack.ws.ephemerals(ARJUN)[-1].text
