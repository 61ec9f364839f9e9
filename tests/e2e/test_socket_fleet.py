"""Three ``rewardbot socket`` processes on one SQLite file, the way an app run as several
processes connects to Slack: each holds its own Socket Mode connection, Slack spreads the
envelopes (commands, submissions, clicks) over them, and one that is killed gets nothing more
while the others take its share. Whichever process takes a request's steps and jobs, each reward
is stored once, ordered once and delivered once."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from bot.offline.emulator import SlackEmulator
from bot.offline.emulator.workspace import Message
from bot.slack.ids import APPROVE_ACTION
from tests.slack_stack import APPROVERS, ARJUN, GOOD_VALUES, JANE, MAYA, TEAM
from tests.support import SocketBotProcess, delivery_dms, free_port, slack_env, sql_rows

pytestmark = pytest.mark.exclusive("three socket processes sharing the envelopes")


def _approval_cards(emulator: SlackEmulator) -> list[Message]:
    return [m for m in emulator.workspace.dm_messages(ARJUN) if "asks you to approve" in m.text]


async def _request_and_approve(emulator: SlackEmulator, number: int) -> None:
    """Maya asks for reward ``number`` (the ``number``-th card Arjun gets) and Arjun approves it;
    every step must be answered, by whichever process Slack sent it to."""
    driver, ws = emulator.driver, emulator.workspace
    assert (await driver.slash_command(MAYA, TEAM)).responded
    await emulator.wait_for(lambda: ws.current_view(MAYA), 10, "the reward modal")
    values = {**GOOD_VALUES, "message": f"Fleet reward {number}"}
    assert (await driver.submit_view(MAYA, values)).responded
    await emulator.wait_for(lambda: len(_approval_cards(emulator)) >= number, 10, "its card")
    card = _approval_cards(emulator)[number - 1]
    assert (await driver.click_button(ARJUN, card.channel, card.ts, APPROVE_ACTION)).responded


async def _statuses(database: str) -> dict[int, str]:
    rows = await sql_rows(database, "SELECT id, status FROM reward_requests")
    return {row["id"]: row["status"] for row in rows}


async def _order_ids(database: str) -> list[str | None]:
    rows = await sql_rows(database, "SELECT provider_order_id FROM reward_requests")
    return [row["provider_order_id"] for row in rows]


async def test_three_socket_processes_share_the_envelopes_and_fulfil_each_reward_once(
    emulator: SlackEmulator, database: str, tmp_path: Path
) -> None:
    env = slack_env(emulator, database, APPROVERS) | {
        "REWARDBOT_PROVIDERS": "sandbox",
        # A killed process's claims expire soon, so another one takes them over.
        "REWARDBOT_JOB_LEASE_SECONDS": "2",
    }
    bots = [
        SocketBotProcess(emulator, env, free_port(), tmp_path / f"bot-{i}.log") for i in range(3)
    ]
    try:
        for bot in bots:
            await bot.start()
        connected = emulator.socket.connection_count
        for number in (1, 2, 3):
            await _request_and_approve(emulator, number)
        assert all(bot.envelopes_answered for bot in bots), [b.envelopes_answered for b in bots]

        killed = bots[1]
        await killed.kill()
        await emulator.wait_for(lambda: emulator.socket.connection_count == 2, 5, "the drop")
        answered_before_kill = killed.envelopes_answered
        for number in (4, 5):
            await _request_and_approve(emulator, number)
        assert killed.envelopes_answered == answered_before_kill

        await killed.start()
        for number in (6, 7):
            await _request_and_approve(emulator, number)
        assert killed.envelopes_answered > answered_before_kill

        async def all_fulfilled() -> bool:
            statuses = await _statuses(database)
            return len(statuses) == 7 and set(statuses.values()) == {"fulfilled"}

        await emulator.wait_for(all_fulfilled, 30, "every reward to be fulfilled")
        await asyncio.sleep(1.5)  # anything still queued would run now: let it show
    except BaseException:
        for i, bot in enumerate(bots):
            print(f"--- bot {i} log, last lines ---\n{bot.log_tail()}")
        raise
    finally:
        for bot in bots:
            await bot.stop()

    assert connected == 3
    assert delivery_dms(emulator, JANE) == Counter(dict.fromkeys(range(1, 8), 1))
    orders = await _order_ids(database)
    assert None not in orders and len(set(orders)) == 7
    for bot in bots:
        assert "Traceback" not in bot.log.read_text(), bot.log_tail()
