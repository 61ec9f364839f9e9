"""A job's run that ends while the database cannot record it (a connection cut, the server
refusing connections) is recorded once the database takes it again, and is not run again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.exc import OperationalError

from bot.jobs.runner import JobRunner
from bot.offline.emulator.waiting import wait_for
from bot.store import Job, JobKind, Store
from tests.support import sql_rows
from tests.unit.support import new_request

LEASE = 0.5  # seconds: an unrecorded run's claim would lapse, and the job be run again, soon


@pytest.fixture
async def store(database: str) -> AsyncIterator[Store]:
    store = await Store.open(database)
    yield store
    await store.close()


async def test_a_run_whose_end_cannot_be_recorded_yet_is_recorded_later_and_not_run_again(
    store: Store, database: str
) -> None:
    request, _ = await store.create_request(new_request(), "V1")
    runs = 0

    async def notify(_: Job) -> None:
        nonlocal runs
        runs += 1

    refusals = 2
    finish = store.finish_job

    async def refused_at_first(job: Job, error: str | None = None) -> None:
        nonlocal refusals
        if refusals:
            refusals -= 1
            raise OperationalError("UPDATE jobs", None, ConnectionRefusedError("not accepting"))
        await finish(job, error=error)

    store.finish_job = refused_at_first  # type: ignore[method-assign]
    runner = JobRunner(store, {JobKind.NOTIFY: notify}, lease_seconds=LEASE, poll_interval=0.02)
    runner.start()
    try:

        async def done() -> bool:
            sql = "SELECT done_at FROM jobs WHERE request_id = :id AND kind = 'notify'"
            [row] = await sql_rows(database, sql, id=request.id)
            return row["done_at"] is not None

        await wait_for(done, timeout=10, interval=0.05, description="the job recorded done")
        await asyncio.sleep(3 * LEASE)  # long past the lease it held
    finally:
        await runner.stop()
    assert (refusals, runs) == (0, 1)
