"""Crash injection: the real bot process is SIGKILLed at each step of fulfilment, restarted on
the same database, and must end with exactly one provider order and exactly one delivery DM.

The bot runs as ``python -m bot serve`` with UGiftMe enabled from the environment; the Slack
emulator and the fake UGiftMe run in this test process, and a tripwire in one of them kills the
bot at the exact request that marks the step.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from bot.offline.emulator import SlackEmulator
from bot.offline.emulator.context import JSON
from bot.slack.ids import APPROVE_ACTION
from tests.fakes import Tripwire, serve
from tests.fakes.giftronaut import CLIENT_ID as GIFTRONAUT_ID
from tests.fakes.giftronaut import CLIENT_SECRET as GIFTRONAUT_SECRET
from tests.fakes.giftronaut import GiftronautState
from tests.fakes.giftronaut import app as giftronaut_app
from tests.fakes.ugiftme import API, UGiftMeState
from tests.fakes.ugiftme import app as ugiftme_app
from tests.slack_stack import APPROVERS, ARJUN, GOOD_VALUES, JANE, MAYA, OMAR, TEAM
from tests.support import BotProcess, free_port, slack_env, sql_rows

CARD = "ugiftme:AMAZON_UK_STD|Amazon UK"


@pytest.fixture
async def ugiftme() -> AsyncIterator[tuple[UGiftMeState, Tripwire, str]]:
    fake, tripwire = UGiftMeState(async_mode=True), Tripwire()
    app = ugiftme_app(fake)
    app.middlewares.append(tripwire.middleware)
    async with serve(app) as url:
        yield fake, tripwire, url


def _is_delivery(emulator: SlackEmulator) -> Callable[[JSON], bool]:
    jane_dm = emulator.workspace.open_dm(JANE).id
    return lambda args: args.get("channel") == jane_dm and "metadata" in args


def _tells_requester(emulator: SlackEmulator) -> Callable[[JSON], bool]:
    maya_dm = emulator.workspace.open_dm(MAYA).id
    return lambda args: args.get("channel") == maya_dm and "was delivered" in str(args)


def _crash_env(emulator: SlackEmulator, database: str) -> dict[str, str]:
    """A bot process's environment that lets a restart take over a killed bot's work soon."""
    return slack_env(emulator, database, APPROVERS) | {
        # A killed bot's claims expire after a second, so the restart takes them over soon.
        "REWARDBOT_JOB_LEASE_SECONDS": "1",
        # A delivery the killed bot started is looked for 2 s after this has passed.
        "REWARDBOT_SLACK_TIMEOUT_SECONDS": "1",
    }


def _env(emulator: SlackEmulator, database: str, fake: UGiftMeState, url: str) -> dict[str, str]:
    return _crash_env(emulator, database) | {
        "REWARDBOT_PROVIDERS": "ugiftme",
        "UGIFTME_API_KEY": fake.api_key,
        "UGIFTME_API_URL": url,
    }


async def _approve_a_ugiftme_reward(emulator: SlackEmulator) -> None:
    """/reward → submit → Arjun approves (whatever is armed fires after this)."""
    await emulator.driver.slash_command(MAYA, TEAM)
    await emulator.wait_for(lambda: emulator.workspace.current_view(MAYA), 10, "the modal")
    await emulator.driver.submit_view(MAYA, {**GOOD_VALUES, "card": CARD})
    card = await emulator.wait_for_dm(ARJUN, "asks you to approve", timeout=10)
    # The bot acks first, but may die before the ack has left the process (Slack would then
    # show the approver an error; the approval itself is already stored).
    with contextlib.suppress(aiohttp.ClientError):
        await emulator.driver.click_button(ARJUN, card.channel, card.ts, APPROVE_ACTION)


# Where the bot dies: (which server sees it, method, what, after handling it?)
CRASH_POINTS = {
    # Whatever is under way then: the approval is stored, the order may already be out.
    "at the first message update after the approval": ("slack", "chat.update", "anything", False),
    "before the order reaches the provider": ("provider", "POST", f"{API}/orders", False),
    "after the order is placed, before its answer": ("provider", "POST", f"{API}/orders", True),
    "while polling the pending order": ("provider", "GET", f"{API}/orders/order-requests", False),
    "before the delivery DM": ("slack", "chat.postMessage", "delivery", False),
    "after the delivery DM, before it is recorded": ("slack", "chat.postMessage", "delivery", True),
    "after delivery, before the requester is told": ("slack", "chat.postMessage", "told", False),
}


@pytest.mark.parametrize("crash_point", list(CRASH_POINTS))
async def test_a_crash_at_any_step_ends_with_one_order_and_one_delivery(
    emulator: SlackEmulator,
    database: str,
    tmp_path: Path,
    ugiftme: tuple[UGiftMeState, Tripwire, str],
    crash_point: str,
) -> None:
    fake, tripwire, url = ugiftme
    bot = BotProcess(
        emulator, _env(emulator, database, fake, url), free_port(), tmp_path / "bot.log"
    )
    ws = emulator.workspace
    await bot.start()
    try:
        where, method, what, after = CRASH_POINTS[crash_point]
        if where == "provider":
            tripwire.arm(method, what, bot.kill, after=after)
        else:
            matches = {
                "delivery": _is_delivery(emulator),
                "told": _tells_requester(emulator),
            }.get(what, lambda _: True)

            async def crash(_: JSON) -> None:
                await bot.kill()

            emulator.on_next_call(method, crash, matches=matches, after=after)

        await _approve_a_ugiftme_reward(emulator)
        assert bot.process is not None
        await asyncio.wait_for(bot.process.wait(), 30)  # the tripwire fired: the bot is dead

        await bot.start()  # same database, same port
        await emulator.wait_for_dm(MAYA, "was delivered", timeout=30)
        await asyncio.sleep(1.5)  # anything still queued would run now: let it show
    finally:
        await bot.stop()

    assert fake.order_count == 1, "the provider issued more (or fewer) than one card"
    assert len(fake.order_requests) == 1
    deliveries = [m for m in ws.dm_messages(JANE) if m.metadata]
    assert len(deliveries) == 1, f"{len(deliveries)} delivery DMs"
    assert await sql_rows(database, "SELECT status FROM reward_requests") == [
        {"status": "fulfilled"}
    ]
    # Neither run may have crashed on its own: every traceback must be a cancellation.
    tracebacks = (tmp_path / "bot.log").read_text().split("Traceback (most recent call last)")
    for traceback in tracebacks[1:]:
        assert "CancelledError" in traceback.split("\n\n")[0], traceback[:3000]


async def test_sigterm_gives_claimed_work_back_and_a_restart_finishes_it(
    emulator: SlackEmulator,
    database: str,
    tmp_path: Path,
    ugiftme: tuple[UGiftMeState, Tripwire, str],
) -> None:
    fake, _, url = ugiftme
    fake.async_steps = 10_000  # the order stays pending while the bot is stopped
    env = _env(emulator, database, fake, url) | {"REWARDBOT_JOB_LEASE_SECONDS": "600"}
    bot = BotProcess(emulator, env, free_port(), tmp_path / "bot.log")
    ws = emulator.workspace
    await bot.start()
    try:
        await _approve_a_ugiftme_reward(emulator)
        await emulator.wait_for(lambda: fake.order_requests, 15, "the order to be placed")
        assert bot.process is not None
        bot.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(bot.process.wait(), 30) == 0
        leased = await sql_rows(
            database, "SELECT id FROM jobs WHERE done_at IS NULL AND lease_owner IS NOT NULL"
        )
        statuses = await sql_rows(database, "SELECT status FROM reward_requests")
        assert (leased, statuses) == ([], [{"status": "ordering"}])  # given back, not held

        fake.async_steps = 1
        await bot.start()
        await emulator.wait_for_dm(MAYA, "was delivered", timeout=30)
    finally:
        await bot.stop()
    assert fake.order_count == 1
    assert len([m for m in ws.dm_messages(JANE) if m.metadata]) == 1


# Where the bot dies while two people's cards share one Giftronaut order.
SHARED_ORDER_CRASH_POINTS = {
    "after the shared order is placed, before its answer": ("POST", "/api/v1/orders/", True),
    "while polling the shared order": ("GET", "/api/v1/orders/", False),
    "after the first recipient's delivery DM": ("chat.postMessage", "delivery", True),
}


@pytest.mark.parametrize("crash_point", list(SHARED_ORDER_CRASH_POINTS))
async def test_a_crash_in_a_shared_order_ends_with_one_order_and_one_delivery_each(
    emulator: SlackEmulator, database: str, tmp_path: Path, crash_point: str
) -> None:
    state, tripwire = GiftronautState(polls_to_complete=1), Tripwire()
    app = giftronaut_app(state)
    app.middlewares.append(tripwire.middleware)
    async with serve(app) as url:
        env = {
            **_crash_env(emulator, database),
            "REWARDBOT_PROVIDERS": "giftronaut",
            "GIFTRONAUT_CLIENT_ID": GIFTRONAUT_ID,
            "GIFTRONAUT_CLIENT_SECRET": GIFTRONAUT_SECRET,
            "GIFTRONAUT_API_URL": url,
        }
        bot = BotProcess(emulator, env, free_port(), tmp_path / "bot.log")
        ws = emulator.workspace
        await bot.start()
        try:
            method, what, after = SHARED_ORDER_CRASH_POINTS[crash_point]
            if method in ("POST", "GET"):
                tripwire.arm(method, what, bot.kill, after=after)
            else:

                async def crash(_: JSON) -> None:
                    await bot.kill()

                emulator.on_next_call(method, crash, matches=_is_delivery(emulator), after=after)
            await emulator.driver.slash_command(MAYA, TEAM)
            await emulator.wait_for(lambda: ws.current_view(MAYA), 10, "the modal")
            await emulator.driver.submit_view(
                MAYA,
                {**GOOD_VALUES, "card": "giftronaut:branded:10042", "more_recipients": [OMAR]},
            )
            card = await emulator.wait_for_dm(ARJUN, "asks you to approve", timeout=10)
            with contextlib.suppress(aiohttp.ClientError):
                await emulator.driver.click_button(ARJUN, card.channel, card.ts, APPROVE_ACTION)
            assert bot.process is not None
            await asyncio.wait_for(bot.process.wait(), 30)  # the tripwire fired

            await bot.start()  # same database, same port
            for who in (JANE, OMAR):
                await emulator.wait_for(
                    lambda who=who: [m for m in ws.dm_messages(who) if m.metadata],
                    30,
                    f"{who}'s delivery",
                )
            await emulator.wait_for(
                lambda: len([m for m in ws.dm_messages(MAYA) if "was delivered" in m.text]) >= 2,
                30,
                "Maya to hear of both deliveries",
            )
            await asyncio.sleep(1.5)  # anything still queued would run now: let it show
        finally:
            await bot.stop()

    [order] = state.created_orders
    assert [r["email"] for r in order.body["recipients"]] == [
        "jane@example.com",
        "omar@example.com",
    ]
    for who in (JANE, OMAR):
        assert len([m for m in ws.dm_messages(who) if m.metadata]) == 1, who
    statuses = await sql_rows(database, "SELECT status FROM reward_requests ORDER BY id")
    assert statuses == [{"status": "fulfilled"}] * 2
