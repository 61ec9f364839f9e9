"""``make bench``: every benchmark, one line per figure, then whether each goal is met.

Run on this machine's defaults (SQLite, one process); with ``REWARDBOT_TEST_POSTGRES_URL`` set
(as ``make bench`` sets it), the ``/reward`` and throughput benchmarks run again on PostgreSQL
with one and with three processes. Each run gets a database of its own.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bench import delivery, flood, reward_ack, throughput
from bench.harness import Goals, postgres_answers, postgres_database, workspace
from bot.offline.emulator import SlackEmulator


async def main(only: set[str]) -> None:
    goals = Goals()
    with tempfile.TemporaryDirectory(prefix="rewardbot-bench-") as tmp:
        logs = Path(tmp)
        counter = iter(range(1_000))

        @asynccontextmanager
        async def database(kind: str) -> AsyncIterator[str]:
            if kind == "sqlite":
                yield str(logs / f"bench-{next(counter)}.db")
            else:
                async with postgres_database() as url:
                    yield url

        fleets = [("sqlite", 1)]
        if await postgres_answers():
            fleets += [("postgresql", 1), ("postgresql", 3)]
        else:
            print("PostgreSQL runs left out: REWARDBOT_TEST_POSTGRES_URL unset or not answering")
        async with SlackEmulator(workspace()) as emulator:
            if not only or "ack" in only:
                for kind, processes in fleets:
                    async with database(kind) as url:
                        await reward_ack.run(emulator, url, processes, logs, goals)
            if not only or "delivery" in only:
                for mode in ("webhooks", "polling only"):
                    async with database("sqlite") as url:
                        await delivery.run(emulator, url, mode, logs, goals)
            if not only or "throughput" in only:
                for kind, processes in fleets:
                    async with database(kind) as url:
                        await throughput.run(emulator, url, processes, logs, goals)
    if not only or "flood" in only:
        await flood.main()
    print(goals.summary())


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(main(set(sys.argv[1:])))
