"""Benchmark 1 (and 5): ``/reward`` typed by 100 people at once, against the bare-bolt floor.

Each round sends 100 signed ``/reward`` commands at the same moment, to rewardbot and to the
floor app (:mod:`bench.floor`) in turn, on the same emulator; the order alternates between
rounds. Figures: the HTTP answer's time (what Slack's 3-second window counts) and the time from
the commands leaving to each ``views.open`` reaching Slack (what the person waits for).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bench.harness import (
    CHANNEL,
    PEOPLE,
    Goals,
    bots,
    floor_app,
    kind_of,
    ms,
    p50,
    percentile,
    requester,
)
from bot.offline.emulator import SlackEmulator

ROUNDS = 6


async def _round(emulator: SlackEmulator, urls: list[str]) -> tuple[list[float], list[float]]:
    """100 ``/reward`` at once, spread over ``urls``: each one's answer time, and each
    ``views.open``'s time from the moment they were sent."""
    emulator.set_request_urls(urls)
    opened_before = len(emulator.calls_to("views.open"))

    async def one(user: str) -> float:
        started = time.monotonic()
        reply = await emulator.driver.slash_command(user, CHANNEL)
        assert reply.responded, f"/reward by {user} was not answered: {reply}"
        return time.monotonic() - started

    sent = time.monotonic()
    answers = await asyncio.gather(*(one(requester(n)) for n in range(PEOPLE)))
    await emulator.wait_for(
        lambda: len(emulator.calls_to("views.open")) - opened_before >= PEOPLE,
        10,
        "every modal to open",
    )
    opened = [call.at - sent for call in emulator.calls_to("views.open")[opened_before:]]
    return list(answers), opened


async def run(
    emulator: SlackEmulator, database: str, processes: int, logs: Path, goals: Goals
) -> None:
    label = f"{processes} process{'es' if processes > 1 else ''} on {kind_of(database)}"
    figures: dict[str, tuple[list[float], list[float]]] = {"bot": ([], []), "floor": ([], [])}
    async with (
        bots(emulator, database, processes, logs) as started,
        floor_app(emulator, logs) as floor_url,
    ):
        urls = {"bot": [bot.request_url for bot in started], "floor": [floor_url]}
        for target in ("bot", "floor"):  # warm-up: imports, caches, connections
            await _round(emulator, urls[target])
        for number in range(ROUNDS):
            for target in ("bot", "floor") if number % 2 == 0 else ("floor", "bot"):
                answers, opened = await _round(emulator, urls[target])
                figures[target][0].extend(answers)
                figures[target][1].extend(opened)
    (bot_answers, bot_opened), (floor_answers, floor_opened) = figures["bot"], figures["floor"]
    bot99, floor99 = percentile(bot_answers, 0.99), percentile(floor_answers, 0.99)
    print(
        f"/reward at {PEOPLE} concurrent, {label}: HTTP answer p50 {ms(p50(bot_answers))} "
        f"p99 {ms(bot99)}; bare-bolt floor p50 {ms(p50(floor_answers))} p99 {ms(floor99)}; "
        f"ratio p99 {bot99 / floor99:.2f}x"
    )
    open99 = percentile(bot_opened, 0.99)
    print(
        f"/reward → views.open at {PEOPLE} concurrent, {label}: p50 {ms(p50(bot_opened))} "
        f"p99 {ms(open99)}; bare-bolt floor p50 {ms(p50(floor_opened))} "
        f"p99 {ms(percentile(floor_opened, 0.99))}"
    )
    goals.check(f"/reward answer p99 <= 1.2x floor ({label})", bot99 <= 1.2 * floor99)
    goals.check(f"views.open p99 < 1 s ({label})", open99 < 1.0)
