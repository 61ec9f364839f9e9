"""Finished jobs are deleted once older than the retention; unfinished jobs and the audit
trail (``events``) never are."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from bot import clock
from bot.jobs.runner import JobRunner, Retention
from bot.store import Job, JobKind, Store
from tests.support import sql_rows
from tests.unit.support import new_request

DAY = 24 * 3600.0
KEEP = timedelta(days=30)


@pytest.fixture
async def store(database: str) -> AsyncIterator[Store]:
    store = await Store.open(database)
    yield store
    await store.close()


async def _jobs(database: str) -> dict[int, int]:
    """Request id → how many jobs it has, read straight from the database."""
    rows = await sql_rows(
        database, "SELECT request_id, COUNT(*) AS jobs FROM jobs GROUP BY request_id"
    )
    return {int(row["request_id"]): int(row["jobs"]) for row in rows}


async def _claimed(store: Store, key: str, *, lease_seconds: float = 30) -> tuple[int, Job]:
    """A new request (``key``) whose notification job is claimed."""
    request, _ = await store.create_request(new_request(), key)
    job = await store.claim_job("runner-test", lease_seconds, JobKind.NOTIFY)
    assert job is not None and job.request_id == request.id
    return request.id, job


async def _finished(store: Store, key: str, error: str | None = None) -> int:
    """A new request whose notification job is done (or, with ``error``, given up) now."""
    request_id, job = await _claimed(store, key)
    await store.finish_job(job, error=error)
    return request_id


async def test_only_jobs_finished_before_the_cutoff_are_deleted_a_batch_at_a_time(
    store: Store, database: str, step_clock: Callable[[float], None]
) -> None:
    step_clock(-40 * DAY)
    done = await _finished(store, "done")
    given_up = await _finished(store, "given-up", error="Slack kept refusing")
    step_clock(-10 * DAY)
    recent = await _finished(store, "recent")
    # Unfinished however old: running (its lease held), waiting on a provider, due, scheduled.
    step_clock(-40 * DAY)
    running, _ = await _claimed(store, "running", lease_seconds=60 * DAY)
    waiting, job = await _claimed(store, "waiting")
    await store.postpone_job(job, clock.now() + timedelta(days=60), waiting=True)
    due, _ = await store.create_request(new_request(), "due")
    scheduled, _ = await store.create_request(
        new_request(), "scheduled", scheduled={JobKind.EXPIRE: clock.now() + timedelta(days=60)}
    )
    step_clock(0)
    events_before = {r: await store.events(r) for r in (done, given_up)}

    cutoff = clock.now() - KEEP
    assert await store.delete_finished_jobs(cutoff, limit=1) == 1
    assert await store.delete_finished_jobs(cutoff, limit=1) == 1
    assert await store.delete_finished_jobs(cutoff, limit=1) == 0

    assert await _jobs(database) == {
        recent: 1,
        running: 1,
        waiting: 1,
        due.id: 1,
        scheduled.id: 2,  # its notification and its expiry
    }
    # The audit trail of a request whose jobs are gone is kept whole.
    for request_id, events in events_before.items():
        assert events and await store.events(request_id) == events


async def test_the_runner_applies_the_retention_at_most_every_so_often(
    store: Store, database: str, step_clock: Callable[[float], None]
) -> None:
    step_clock(-40 * DAY)
    old = await _finished(store, "old")
    step_clock(0)
    fresh, _ = await store.create_request(new_request(), "fresh")
    events_of_old = await store.events(old)

    async def quiet(_: Job) -> None:
        return None

    runner = JobRunner(
        store,
        {JobKind.NOTIFY: quiet},
        poll_interval=0.02,
        retention=Retention(keep=KEEP, every=3600, batch=100),
    )
    runner.start()
    try:
        await asyncio.wait_for(runner.wait_idle(), 5)
        assert await _jobs(database) == {fresh.id: 1}  # the old job went, the fresh one ran
        assert await store.events(old) == events_of_old

        # Another job that finished long ago waits for the next pass, an hour on. (The
        # runner itself runs it, 40 days back: a job claimed by the test could race it.)
        step_clock(-40 * DAY)
        later, _ = await store.create_request(new_request(), "later")
        await asyncio.wait_for(runner.wait_idle(), 5)
        step_clock(0)
        await asyncio.sleep(0.3)  # many turns of the runner's loop
        assert await _jobs(database) == {fresh.id: 1, later.id: 1}
    finally:
        await runner.stop()


async def test_a_runner_without_a_retention_keeps_every_job(
    store: Store, database: str, step_clock: Callable[[float], None]
) -> None:
    step_clock(-400 * DAY)
    old = await _finished(store, "old")
    step_clock(0)

    async def quiet(_: Job) -> None:
        return None

    runner = JobRunner(store, {JobKind.NOTIFY: quiet}, poll_interval=0.02)
    runner.start()
    try:
        await asyncio.sleep(0.2)
        assert await _jobs(database) == {old: 1}
    finally:
        await runner.stop()


async def test_the_runner_stays_alive_for_readiness_while_a_long_retention_pass_runs(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first pass after an upgrade (or on a busy database) takes many slow batches: each
    batch done marks the loop alive, so readiness never mistakes the pass for a stuck loop."""
    batches = 0
    pass_done = asyncio.Event()
    # When the loop was last marked alive, as each batch starts (read from the runner: a
    # check against the clock would depend on how busy the machine is).
    marks: list[float] = []

    async def slow_full_batch(_cutoff: object, limit: int) -> int:
        nonlocal batches
        batches += 1
        marks.append(runner._last_round)
        await asyncio.sleep(0.1)
        if batches == 10:
            pass_done.set()
        return limit

    monkeypatch.setattr(store, "delete_finished_jobs", slow_full_batch)
    runner = JobRunner(
        store,
        {},
        poll_interval=0.02,
        retention=Retention(keep=KEEP, every=3600, batch=10, batches_per_pass=10),
    )
    runner.start()
    try:
        await asyncio.wait_for(pass_done.wait(), 10)
    finally:
        await runner.stop()
    # Every batch after the first started with the loop marked alive again.
    assert all(later > earlier for earlier, later in itertools.pairwise(marks)), marks
