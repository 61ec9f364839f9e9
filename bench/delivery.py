"""Benchmark 2: from the approver's click to the recipient's delivery DM, for a Runa order that
completes 1 s after it is placed: with Runa's ``order.completion`` webhook, and by polling only.

One bot process (SQLite), the fake Runa (:mod:`tests.fakes.runa`) in async mode; each sample
is a reward asked for and approved through Slack, one after another. The DM's time is when
its ``chat.postMessage`` reached the emulator.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.harness import APPROVER, CHANNEL, RECIPIENT, Goals, bots, ms, p50, percentile, requester
from bot.offline.emulator import SlackEmulator
from bot.offline.emulator.workspace import Message
from bot.slack.ids import APPROVE_ACTION
from tests.fakes import serve
from tests.fakes.runa import API_KEY, RunaState
from tests.fakes.runa import app as runa_app

SAMPLES = 15
COMPLETES_AFTER = 1.0
VALUES = {"recipient": RECIPIENT, "card": "runa:COFFEE-GB", "amount": "25", "message": "Thanks"}


def _cards(emulator: SlackEmulator) -> list[Message]:
    return [m for m in emulator.workspace.dm_messages(APPROVER) if "asks you to approve" in m.text]


async def _sample(emulator: SlackEmulator, number: int) -> float:
    """One reward asked for and approved; seconds from the click to the delivery DM."""
    user = requester(number % 100)
    seen = len(_cards(emulator))
    ws = emulator.workspace
    before = (ws.current_view(user) or {}).get("id")
    assert (await emulator.driver.slash_command(user, CHANNEL)).responded
    await emulator.wait_for(
        lambda: (ws.current_view(user) or {}).get("id") not in (None, before), 10, "the form"
    )
    await emulator.driver.submit_view(user, VALUES)
    card = await emulator.wait_for(
        lambda: _cards(emulator)[-1] if len(_cards(emulator)) > seen else None,
        10,
        "the approval card",
    )
    recipient_dm = emulator.workspace.open_dm(RECIPIENT).id
    posted_before = len(emulator.calls_to("chat.postMessage"))
    clicked = time.monotonic()
    assert (
        await emulator.driver.click_button(APPROVER, card.channel, card.ts, APPROVE_ACTION)
    ).responded

    def delivered() -> float | None:
        for call in emulator.calls_to("chat.postMessage")[posted_before:]:
            if call.ok and call.response.get("channel") == recipient_dm:
                return call.at
        return None

    return float(await emulator.wait_for(delivered, 30, "the delivery DM")) - clicked


async def run(emulator: SlackEmulator, database: str, mode: str, logs: Path, goals: Goals) -> None:
    """``mode``: ``webhooks`` or ``polling only``."""
    fake = RunaState(completion_delay=COMPLETES_AFTER)
    async with serve(runa_app(fake)) as runa_url:
        env = {
            "REWARDBOT_PROVIDERS": "runa",
            "RUNA_API_KEY": API_KEY,
            "RUNA_API_URL": runa_url + "/v2",
        }
        if mode == "webhooks":
            env["RUNA_WEBHOOK_SECRET"] = fake.webhook_secret
        async with bots(emulator, database, 1, logs, env) as [bot]:
            if mode == "webhooks":
                fake.webhook_url = f"http://127.0.0.1:{bot.port}/webhooks/runa"
            await _sample(emulator, 0)  # warm-up
            waits = [await _sample(emulator, n) for n in range(1, SAMPLES + 1)]
    median, slowest = p50(waits), percentile(waits, 0.99)
    print(
        f"approve → delivery DM, order completing after {COMPLETES_AFTER:.0f} s, {mode}: "
        f"p50 {ms(median)} p99 {ms(slowest)} over {SAMPLES} rewards"
        + (f" ({fake.webhooks_sent} webhooks)" if mode == "webhooks" else "")
    )
    allowed = 0.1 if mode == "webhooks" else 0.5
    goals.check(
        f"approve → DM p50 <= completion + {ms(allowed)} ({mode})",
        median <= COMPLETES_AFTER + allowed,
    )
