"""Running the bot: fallbacks, restarts, request signing, health, start-up errors."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.domain import Status
from bot.offline.emulator import SlackEmulator, signed_headers
from bot.offline.local import running_bot
from bot.server import SLACK_PATH
from bot.slack.ids import APPROVE_ACTION
from providers.sandbox import SandboxProvider
from tests.slack_stack import (
    APPROVERS,
    ARJUN,
    GOOD_VALUES,
    JANE,
    MAYA,
    QUIET,
    TEAM,
    Stack,
    sandbox_stack,
)
from tests.support import free_port, rewardbot, serve_args, slack_env, wait_healthy


async def test_summary_falls_back_to_the_requesters_dm(stack: Stack) -> None:
    await stack.request_reward(GOOD_VALUES, channel=QUIET)  # the bot is not in #quiet
    summary = await stack.emulator.wait_for_dm(MAYA, "Reward #1")
    assert not stack.ws.messages(QUIET)
    await stack.emulator.wait_for(lambda: stack.ws.dm_messages(ARJUN), 5, "the card")
    await stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION)
    await stack.emulator.wait_for_dm(JANE, "sent you a reward")
    await stack.emulator.wait_for(
        lambda: any(
            "Delivered" in m.text for m in stack.ws.thread_replies(summary.channel, summary.ts)
        ),
        5,
        "thread update",
    )


async def test_no_other_approver_means_no_modal(emulator: SlackEmulator, database: str) -> None:
    async with running_bot(emulator, database=database, approvers=[MAYA]):
        await emulator.driver.slash_command(MAYA, TEAM)
        # Answered through the command's response_url, which only Maya sees.
        await emulator.wait_for(lambda: emulator.workspace.ephemerals(MAYA), 5, "the answer")
    assert "No approver other than you" in emulator.workspace.ephemerals(MAYA)[0].text
    assert emulator.workspace.current_view(MAYA) is None


async def test_a_restarted_bot_keeps_requests_and_finishes_unfinished_orders(
    emulator: SlackEmulator, database: str
) -> None:
    slow = SandboxProvider(completion_delay=30)  # still pending when the bot stops
    slow.poll_interval = 0.2  # the restarted bot's next look is soon
    async with sandbox_stack(emulator, database, slow) as stack:
        await stack.request_reward(GOOD_VALUES)
        await stack.request_reward({**GOOD_VALUES, "amount": "30"})
        await emulator.wait_for(lambda: len(stack.ws.dm_messages(ARJUN)) == 2, 5, "two cards")
        first_card = stack.ws.dm_messages(ARJUN)[0]
        await stack.click(ARJUN, first_card, APPROVE_ACTION)
        await emulator.wait_for(lambda: slow.order_count == 1, 5, "the order to be placed")
        key = (await stack.runtime.store.get(1)).idempotency_key

    # The new process's sandbox knows the order (as a real provider does) and completes it.
    restarted = SandboxProvider(completion_delay=0)
    async with running_bot(
        emulator, database=database, approvers=APPROVERS, providers={"sandbox": restarted}
    ) as runtime:
        await emulator.wait_for_dm(JANE, "sent you a reward")
        await emulator.wait_for_dm(MAYA, "was delivered")
        first = await runtime.store.get(1)
        assert first.status is Status.FULFILLED
        assert first.idempotency_key == key
        assert restarted.order_count == 0  # the stored order was looked up, not sent again
        # The pending request survived and its card still works.
        second = await runtime.store.get(2)
        assert second.status is Status.PENDING_APPROVAL
        await Stack(emulator, runtime, restarted).click(
            ARJUN, stack.ws.dm_messages(ARJUN)[1], APPROVE_ACTION
        )
        await emulator.wait_for(lambda: len(stack.ws.dm_messages(JANE)) == 2, 5, "2nd delivery")
        assert restarted.order_count == 1  # only the new one: the first was never sent again


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.mark.parametrize(
    ("problem", "status"),
    [(None, 200), ("missing", 401), ("wrong secret", 401), ("stale", 401), ("tampered", 401)],
)
async def test_only_correctly_signed_requests_are_processed(
    stack: Stack, http_session: aiohttp.ClientSession, problem: str | None, status: int
) -> None:
    trigger = stack.emulator.triggers.issue(MAYA)
    body = (
        f"command=%2Freward&text=&user_id={MAYA}&channel_id={TEAM}"
        f"&trigger_id={trigger}&team_id=T0EMULATOR"
    )
    now = int(time.time())
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if problem is None:
        headers |= signed_headers(stack.emulator.signing_secret, body, now)
    elif problem == "wrong secret":
        headers |= signed_headers("not-the-secret", body, now)
    elif problem == "stale":
        headers |= signed_headers(stack.emulator.signing_secret, body, now - 301)
    elif problem == "tampered":
        headers |= signed_headers(stack.emulator.signing_secret, body, now)
        body = body.replace("text=", "text=1000")
    url = stack.emulator.driver.delivery.request_url  # type: ignore[union-attr]
    async with http_session.post(url, data=body.encode(), headers=headers) as response:
        assert response.status == status
    if status == 200:
        await stack.emulator.wait_for(lambda: stack.ws.current_view(MAYA), 5, "the modal")
    else:
        assert not stack.emulator.calls_to("views.open")


async def test_healthz_answers(stack: Stack, http_session: aiohttp.ClientSession) -> None:
    url = stack.emulator.driver.delivery.request_url.replace(SLACK_PATH, "/healthz")  # type: ignore[union-attr]
    async with http_session.get(url) as response:
        assert response.status == 200
        assert await response.json() == {"ok": True}


def _bot_env(emulator: SlackEmulator, database: str) -> dict[str, str]:
    return slack_env(emulator, database, APPROVERS) | {"REWARDBOT_PROVIDERS": "sandbox"}


@pytest.mark.parametrize("mode", ["serve", "socket"])
async def test_rewardbot_process_handles_slack_requests_and_stops_on_sigterm(
    emulator: SlackEmulator, database: str, tmp_path: Path, mode: str
) -> None:
    port = free_port()
    args = serve_args(port) if mode == "serve" else ["socket"]
    env = _bot_env(emulator, database) | {"SLACK_APP_TOKEN": emulator.app_token}
    process = await rewardbot(*args, env=env, cwd=tmp_path)
    try:
        if mode == "serve":
            await wait_healthy(port, process=process)
            emulator.set_request_url(f"http://127.0.0.1:{port}{SLACK_PATH}")
        else:
            emulator.use_socket_mode()
            await emulator.wait_for(lambda: emulator.socket.connection_count, 20, "connect")
        reply = await emulator.driver.slash_command(MAYA, TEAM, text=f"<@{JANE}> 25")
        assert reply.responded
        view = await emulator.wait_for(lambda: emulator.workspace.current_view(MAYA), 5, "modal")
        assert view["callback_id"] == "reward_request"
    finally:
        process.terminate()
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, stderr.decode()


def test_demo_walks_a_reward_through_and_exits_0(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Done: request #1 is fulfilled" in result.stdout
    assert "was rejected by @lin" in result.stdout
    assert "sandbox.rewardbot.invalid" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("command", "env_changes", "message"),
    [
        ("serve", {"SLACK_SIGNING_SECRET": ""}, "Missing setting SLACK_SIGNING_SECRET"),
        ("socket", {}, "Missing setting SLACK_APP_TOKEN"),
        # Forgotten providers never fall back to the sandbox's fake cards.
        ("serve", {"REWARDBOT_PROVIDERS": ""}, "Missing setting REWARDBOT_PROVIDERS"),
        (
            "socket",
            {"REWARDBOT_PROVIDERS": "", "SLACK_APP_TOKEN": "xapp-1"},
            "Missing setting REWARDBOT_PROVIDERS",
        ),
        (
            "serve",
            {"SLACK_API_URL": "http://slack.example.com/api/"},
            "SLACK_API_URL must be an http(s) URL: https, or plain http to a loopback host",
        ),
        ("serve", {"REWARDBOT_APPROVERS": "bob"}, "REWARDBOT_APPROVERS not Slack user IDs"),
        (
            "serve",
            {"REWARDBOT_PROVIDERS": "sandbox,wegift"},
            "Provider wegift: Invalid configuration: RUNA_API_KEY is required",
        ),
        (
            "socket",
            {"REWARDBOT_PROVIDERS": "giftronaut", "SLACK_APP_TOKEN": "xapp-1"},
            "GIFTRONAUT_CLIENT_ID is required",
        ),
    ],
)
def test_bad_configuration_stops_start_up_with_one_clear_message(
    emulator: SlackEmulator,
    tmp_path: Path,
    command: str,
    env_changes: dict[str, str],
    message: str,
) -> None:
    # About the settings, which are read before the store is opened: SQLite's file will do.
    env = _bot_env(emulator, str(tmp_path / "rewardbot.db")) | env_changes
    result = subprocess.run(
        [sys.executable, "-m", "bot", command],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
