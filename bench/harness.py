"""What every benchmark shares: the emulator with enough people, bot processes started as an
admin starts them, a PostgreSQL database of its own, percentiles, and the goals' verdicts.

The bot runs as real ``rewardbot serve`` processes (``tests.support.BotProcess``); the emulator,
the provider fakes and the clients run in the benchmark's own process and event loop.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import make_url, text

from bot.offline.emulator import SlackEmulator, Workspace
from bot.store import DATABASE_ERRORS
from tests.databases import POSTGRES_URL_VARIABLE, engine_for
from tests.support import BotProcess, free_port, slack_env, wait_healthy

APPROVER, RECIPIENT, CHANNEL = "U0APPROVER", "U0RECIPIENT", "C0BENCH"
PEOPLE = 100  # the requesters: one /reward each at a time


def requester(number: int) -> str:
    return f"U0B{number:04d}"


def workspace() -> Workspace:
    ws = Workspace()
    members = [requester(n) for n in range(PEOPLE)]
    for user in members:
        ws.add_user(user, name=user.lower(), real_name=f"Requester {user[3:]}")
    ws.add_user(APPROVER, name="approver", real_name="An Approver")
    ws.add_user(RECIPIENT, name="recipient", real_name="A Recipient")
    ws.add_channel(CHANNEL, name="bench", members=[*members, APPROVER, RECIPIENT])
    return ws


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def p50(values: Sequence[float]) -> float:
    return statistics.median(values)


def kind_of(database: str) -> str:
    return "PostgreSQL" if database.startswith("postgresql") else "SQLite"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


@dataclass
class Goals:
    """Each goal as met or not, printed as one summary line at the end."""

    verdicts: list[tuple[str, bool]] = field(default_factory=list)

    def check(self, name: str, met: bool) -> None:
        self.verdicts.append((name, met))
        print(f"  goal {name}: {'met' if met else 'NOT met'}")

    def summary(self) -> str:
        met = sum(ok for _, ok in self.verdicts)
        missed = [name for name, ok in self.verdicts if not ok]
        tail = f"; not met: {'; '.join(missed)}" if missed else ""
        return f"goals: {met} of {len(self.verdicts)} met{tail}"


def postgres_admin() -> str | None:
    return os.environ.get(POSTGRES_URL_VARIABLE) or None


async def postgres_answers() -> bool:
    """Whether ``REWARDBOT_TEST_POSTGRES_URL`` is set and its server answers."""
    admin = postgres_admin()
    if admin is None:
        return False
    engine = engine_for(admin)
    try:
        async with asyncio.timeout(5), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (OSError, TimeoutError, *DATABASE_ERRORS):
        return False
    finally:
        await engine.dispose()
    return True


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A PostgreSQL database of its own, dropped after (needs ``REWARDBOT_TEST_POSTGRES_URL``)."""
    admin = postgres_admin()
    assert admin is not None
    name = f"rewardbot_bench_{uuid.uuid4().hex[:12]}"
    engine = engine_for(admin, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin).set(database=name).render_as_string(hide_password=False)
        finally:
            async with engine.connect() as connection:
                await connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


@asynccontextmanager
async def bots(
    emulator: SlackEmulator,
    database: str,
    count: int,
    logs: Path,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[list[BotProcess]]:
    """``count`` ``rewardbot serve`` processes on ``database``, Slack's requests spread over
    them; stopped (SIGTERM) on exit."""
    env = slack_env(emulator, database, (APPROVER,)) | {
        "REWARDBOT_PROVIDERS": "sandbox",
        "REWARDBOT_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    started = [
        BotProcess(emulator, env, free_port(), logs / f"bot-{n}.log", routes_slack=False)
        for n in range(count)
    ]
    async with AsyncExitStack() as stack:
        for bot in started:
            try:
                await bot.start()
            except AssertionError:
                raise RuntimeError(f"a bot did not start:\n{bot.log_tail(20)}") from None
            stack.push_async_callback(bot.stop)
        emulator.set_request_urls([bot.request_url for bot in started])
        yield started


@asynccontextmanager
async def floor_app(emulator: SlackEmulator, logs: Path) -> AsyncIterator[str]:
    """The bare-bolt floor (:mod:`bench.floor`) in a process of its own; its request URL."""
    port = free_port()
    env = slack_env(emulator, "unused", ())
    with (logs / "floor.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.floor", str(port), env=env, stdout=log, stderr=log
        )
    try:
        await wait_healthy(port, process=process)
        yield f"http://127.0.0.1:{port}/slack/events"
    finally:
        process.terminate()
        await process.wait()


def peak_rss_mb(bot: BotProcess) -> float:
    """The process's peak resident memory so far (``VmHWM``), in MB."""
    assert bot.process is not None
    status = Path(f"/proc/{bot.process.pid}/status").read_text()
    [line] = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(line.split()[1]) / 1024
