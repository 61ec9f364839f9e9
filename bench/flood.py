"""Ack time of a signed ``/reward help`` while four clients flood the endpoint with unsigned
1 MiB bodies, against the same without the flood, in one run.

The real bot (HTTP, sandbox) runs against the built-in emulator on this machine; the flood and
the measured requests are plain aiohttp clients. Prints one line per figure and the ratio.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import statistics
import tempfile
import time
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import aiohttp

from bot.offline.emulator import SlackEmulator, Workspace
from bot.offline.emulator.signing import signed_headers
from bot.offline.local import running_bot

SAMPLES = 200
FLOODERS = 4
FLOOD_BODY = b"payload=" + b"x" * (1024 * 1024 - 8)
USER, CHANNEL = "U0BENCH", "C0BENCH"


def _workspace() -> Workspace:
    ws = Workspace()
    ws.add_user(USER, name="bench", real_name="Bench Marker")
    ws.add_user("U0APPROVER", name="approver", real_name="An Approver")
    ws.add_channel(CHANNEL, name="bench", members=[USER, "U0APPROVER"])
    return ws


async def _acks(session: aiohttp.ClientSession, url: str, emulator: SlackEmulator) -> list[float]:
    """Seconds from sending a signed /reward help to the bot's answer, SAMPLES times."""
    times = []
    for _ in range(SAMPLES):
        body = (
            f"command=%2Freward&text=help&user_id={USER}&channel_id={CHANNEL}"
            f"&trigger_id={emulator.triggers.issue(USER)}&team_id=T0EMULATOR"
        )
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        headers |= signed_headers(emulator.signing_secret, body, int(time.time()))
        started = time.perf_counter()
        async with session.post(url, data=body.encode(), headers=headers) as response:
            await response.read()
            assert response.status == 200, response.status
        times.append(time.perf_counter() - started)
    return times


def _flood(url: str, stop: EventType, sent: Synchronized[int]) -> None:
    """One flooding client, in a process of its own (it must not share the bot's loop)."""

    async def send() -> None:
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                headers = {"Content-Type": "application/x-www-form-urlencoded"}
                async with session.post(url, data=FLOOD_BODY, headers=headers) as response:
                    await response.read()
                with sent.get_lock():
                    sent.value += 1

    asyncio.run(send())


def _line(name: str, times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    print(f"{name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(times)} requests")
    return p50, p99


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            SlackEmulator(_workspace()) as emulator,
            running_bot(emulator, database=Path(tmp) / "bench.db", approvers=["U0APPROVER"]),
        ):
            url = str(emulator.driver.delivery.request_url)  # type: ignore[union-attr]
            async with aiohttp.ClientSession() as session:
                await _acks(session, url, emulator)  # warm-up
                calm = await _acks(session, url, emulator)
                stop, refused = multiprocessing.Event(), multiprocessing.Value("i", 0)
                flooders = [
                    multiprocessing.Process(target=_flood, args=(url, stop, refused))
                    for _ in range(FLOODERS)
                ]
                for flooder in flooders:
                    flooder.start()
                await asyncio.sleep(1.0)
                flooded = await _acks(session, url, emulator)
                stop.set()
                for flooder in flooders:
                    await asyncio.to_thread(flooder.join, 30)
                sent = refused.value
    calm_p50, calm_p99 = _line("signed /reward help, no flood", calm)
    flood_p50, flood_p99 = _line(
        f"signed /reward help, {FLOODERS} clients flooding unsigned 1 MiB bodies "
        f"({sent} refused meanwhile)",
        flooded,
    )
    print(f"ratio flooded/calm: p50 {flood_p50 / calm_p50:.2f}x, p99 {flood_p99 / calm_p99:.2f}x")


if __name__ == "__main__":
    # The bot's one short line per refusal is part of the cost; written where a service's
    # log would go (stderr), not in the figures.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(main())
