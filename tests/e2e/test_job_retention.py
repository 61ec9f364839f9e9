"""The running bot applies REWARDBOT_JOB_RETENTION_DAYS to the jobs a previous run finished."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from bot.offline.emulator import SlackEmulator
from bot.offline.local import running_bot
from bot.store import JobKind, Store
from tests.slack_stack import APPROVERS
from tests.support import sql_rows
from tests.unit.support import new_request

DAY = 24 * 3600.0


async def _a_job_finished_days_ago(
    database: str, days: float, step: Callable[[float], None]
) -> int:
    step(-days * DAY)
    store = await Store.open(database)
    try:
        request, _ = await store.create_request(new_request(), "long-ago")
        job = await store.claim_job("runner-earlier", 30, JobKind.NOTIFY)
        assert job is not None
        await store.finish_job(job)
    finally:
        await store.close()
        step(0)
    return request.id


async def _job_count(database: str) -> int:
    [row] = await sql_rows(database, "SELECT COUNT(*) AS jobs FROM jobs")
    return int(row["jobs"])


@pytest.mark.parametrize(("days", "kept"), [(None, 0), ("50", 1)])
async def test_the_bot_deletes_jobs_finished_longer_ago_than_the_retention(
    emulator: SlackEmulator,
    database: str,
    step_clock: Callable[[float], None],
    monkeypatch: pytest.MonkeyPatch,
    days: str | None,
    kept: int,
) -> None:
    if days is None:
        monkeypatch.delenv("REWARDBOT_JOB_RETENTION_DAYS", raising=False)  # 30 days
    else:
        monkeypatch.setenv("REWARDBOT_JOB_RETENTION_DAYS", days)

    async def no_jobs_left() -> bool:
        return await _job_count(database) == 0

    request_id = await _a_job_finished_days_ago(database, 40, step_clock)
    async with running_bot(emulator, database=database, approvers=APPROVERS) as runtime:
        # The runner's first pass comes at start.
        if kept:
            await asyncio.sleep(0.5)
        else:
            await emulator.wait_for(no_jobs_left, 5, "the old job to go")
        assert await _job_count(database) == kept
        assert [e.kind for e in await runtime.store.events(request_id)] == ["created"]
