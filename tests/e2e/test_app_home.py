"""The App Home tab: waiting requests with working buttons, your own requests live, budgets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from bot.domain import Status
from bot.offline.emulator import SlackEmulator
from bot.slack.ids import APPROVE_ACTION, REJECT_ACTION
from tests.slack_stack import ARJUN, GOOD_VALUES, JANE, LIN, MAYA, OMAR, Stack
from tests.support import policy_stack, submit_request


def home_text(stack: Stack, user: str) -> str:
    return json.dumps(stack.ws.home_view(user) or {})


async def wait_home(stack: Stack, user: str, check: Callable[[str], bool], what: str) -> None:
    await stack.emulator.wait_for(lambda: check(home_text(stack, user)), 5, what)


async def test_approver_decides_from_the_home_tab_and_every_tab_stays_current(
    stack: Stack,
) -> None:
    await stack.request_reward(GOOD_VALUES)
    await stack.emulator.wait_for(lambda: stack.ws.dm_messages(ARJUN), 5, "the card")
    await stack.emulator.driver.open_app_home(ARJUN)
    await wait_home(stack, ARJUN, lambda t: "Waiting for your decision" in t, "Arjun's tab")
    assert "Reward #1" in home_text(stack, ARJUN)
    # Jane is the recipient: nothing about the surprise in her tab.
    await stack.emulator.driver.open_app_home(JANE)
    await wait_home(stack, JANE, lambda t: "Your recent requests" in t, "Jane's tab")
    assert "Reward #1" not in home_text(stack, JANE) and "Waiting for your" not in home_text(
        stack, JANE
    )

    await stack.emulator.driver.click_home_button(ARJUN, APPROVE_ACTION)
    await stack.wait_status(1, Status.FULFILLED)
    await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
    # Published again on every change, without anyone reopening a tab.
    await wait_home(stack, ARJUN, lambda t: "Waiting for your decision" not in t, "Arjun's tab")
    await wait_home(stack, MAYA, lambda t: "Delivered privately" in t, "Maya's tab")
    assert "Nothing more to do" in home_text(stack, MAYA)


async def test_reject_from_the_home_tab_asks_for_a_reason(stack: Stack) -> None:
    await stack.request_reward(GOOD_VALUES)
    await stack.emulator.wait_for(lambda: stack.ws.dm_messages(LIN), 5, "the card")
    await stack.emulator.driver.open_app_home(LIN)
    await wait_home(stack, LIN, lambda t: "Reward #1" in t, "Lin's tab")
    await stack.emulator.driver.click_home_button(LIN, REJECT_ACTION)
    await stack.emulator.wait_for(lambda: stack.ws.current_view(LIN), 5, "the reason modal")
    await stack.emulator.driver.submit_view(LIN, {"reason": "Budget is spent"})
    await stack.wait_status(1, Status.REJECTED)
    await wait_home(stack, LIN, lambda t: "Reward #1" not in t, "Lin's tab to update")


async def test_a_non_approver_sees_only_their_own_requests(stack: Stack) -> None:
    await stack.request_reward(GOOD_VALUES)
    await stack.emulator.driver.open_app_home(OMAR)
    await wait_home(stack, OMAR, lambda t: "None yet" in t, "Omar's tab")
    assert "Waiting for your decision" not in home_text(stack, OMAR)


async def test_managers_see_their_teams_budget(
    emulator: SlackEmulator, database: str, tmp_path: Path
) -> None:
    async with policy_stack(emulator, database, tmp_path) as stack:
        await submit_request(stack, MAYA, amount="40")
        await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
        await emulator.driver.open_app_home(ARJUN)
        await wait_home(stack, ARJUN, lambda t: "budgets" in t, "Arjun's tab")
        assert "40.00 GBP awaiting approval or delivery, 260.00 GBP left of 300.00 GBP" in (
            home_text(stack, ARJUN)
        )
        await emulator.driver.open_app_home(LIN)  # approves, but manages no team
        await wait_home(stack, LIN, lambda t: "Your recent requests" in t, "Lin's tab")
        assert "budgets" not in home_text(stack, LIN)
