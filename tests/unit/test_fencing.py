"""Claims are fenced by their token, not by clocks: a run whose job was claimed again (after its
lease looked expired, for whatever reason) cannot act any more, and a lease nobody took over is
still held however late it is renewed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from bot import clock
from bot.domain import Status
from bot.jobs.runner import DEFAULT_GIVE_UP, JobHandler, JobRunner
from bot.store import Change, Job, JobKind, LeaseLost, Store
from tests.unit.support import new_request


@pytest.fixture
async def store(database: str) -> AsyncIterator[Store]:
    store = await Store.open(database)
    yield store
    await store.close()


def _runner(store: Store, fulfil: JobHandler, lease_seconds: float) -> JobRunner:
    """A runner of ``fulfil`` jobs (notifications done as nothing), polling often."""

    async def quiet(_: Job) -> None:
        return None

    return JobRunner(
        store,
        {JobKind.FULFIL: fulfil, JobKind.NOTIFY: quiet},
        lease_seconds=lease_seconds,
        poll_interval=0.02,
    )


async def _ordering_request_with_job(store: Store) -> int:
    request, _ = await store.create_request(new_request(), "V1")
    await store.transition(
        request.id, Status.PENDING_APPROVAL, Status.APPROVED, "UAPP", then=[JobKind.FULFIL]
    )
    await store.transition(request.id, Status.APPROVED, Status.ORDERING, "rewardbot")
    return request.id


async def test_a_claim_taken_over_after_a_clock_step_can_no_longer_act(
    store: Store, step_clock: Callable[[float], None]
) -> None:
    request_id = await _ordering_request_with_job(store)
    first = await store.claim_job("runner-a", 30, JobKind.FULFIL)
    assert first is not None
    step_clock(120)  # the lease now looks expired
    second = await store.claim_job("runner-b", 30, JobKind.FULFIL)
    assert second is not None and second.id == first.id and second.lease != first.lease

    # Every side effect of the first run is refused before it happens...
    with pytest.raises(LeaseLost):
        await store.hold(first)
    with pytest.raises(LeaseLost):
        await store.start_delivery(request_id, first)
    with pytest.raises(LeaseLost):
        await store.record_send(first, "sandbox", "key-1", "fingerprint")
    with pytest.raises(LeaseLost):
        await store.transition_all(
            [Change(request_id, Status.ORDERING, Status.FAILED)], "rewardbot", fence=first
        )
    assert not await store.extend_lease(first)
    # ...and nothing it tried was written.
    assert (await store.get(request_id)).status is Status.ORDERING
    assert (await store.send_record("key-1")).sends == 0

    # The current claim acts, once: a second start of the delivery names the first.
    started = await store.start_delivery(request_id, second)
    assert started.other_claim is None
    assert (await store.start_delivery(request_id, second)).other_claim is None
    third = await _claim_after_expiry(store, step_clock, 240)
    again = await store.start_delivery(request_id, third)
    assert again.other_claim == second.lease


async def _claim_after_expiry(
    store: Store, step_clock: Callable[[float], None], seconds: float
) -> Job:
    step_clock(seconds)
    job = await store.claim_job("runner-c", 30, JobKind.FULFIL)
    assert job is not None
    return job


async def test_a_lease_nobody_took_over_is_held_however_late_it_is_renewed(
    store: Store, step_clock: Callable[[float], None]
) -> None:
    await _ordering_request_with_job(store)
    job = await store.claim_job("runner-a", 30, JobKind.FULFIL)
    assert job is not None
    step_clock(600)
    assert await store.extend_lease(job)
    await store.hold(job)
    # Renewed from the stepped clock: nobody else can claim it now.
    assert await store.claim_job("runner-b", 30, JobKind.FULFIL) is None


async def test_a_runner_never_takes_its_own_running_job_over(
    store: Store, step_clock: Callable[[float], None]
) -> None:
    """A clock step makes the lease of a job still running look expired: the runner that runs
    it must not start it a second time."""
    await _ordering_request_with_job(store)
    release = asyncio.Event()
    runs: list[str] = []

    async def slow_fulfil(job: Job) -> None:
        runs.append(job.lease)
        await release.wait()

    runner = _runner(store, slow_fulfil, lease_seconds=30)
    runner.start()
    try:
        for _ in range(100):
            if runs:
                break
            await asyncio.sleep(0.01)
        step_clock(120)
        runner.wake()
        await asyncio.sleep(0.3)
        assert len(runs) == 1
    finally:
        release.set()
        await runner.stop()


async def test_a_dead_holders_lease_written_by_a_clock_far_ahead_is_taken_over(
    store: Store, step_clock: Callable[[float], None]
) -> None:
    """A process with its clock ten minutes ahead claimed the job and died: its lease says it
    lasts ten more minutes, but nobody renews it, and another runner sees that on its own
    monotonic clock and takes the job over after a lease and a half."""
    await _ordering_request_with_job(store)
    step_clock(600)
    dead = await store.claim_job("runner-dead", 0.2, JobKind.FULFIL)
    assert dead is not None
    step_clock(0)
    ran = asyncio.Event()

    async def fulfil(_: Job) -> None:
        ran.set()

    runner = _runner(store, fulfil, lease_seconds=0.2)
    runner.start()
    try:
        await asyncio.wait_for(ran.wait(), 3)
    finally:
        await runner.stop()
    with pytest.raises(LeaseLost):
        await store.hold(dead)


async def test_a_recorded_send_is_unsettled_until_the_provider_says_what_became_of_it(
    store: Store,
) -> None:
    request_id = await _ordering_request_with_job(store)
    job = await store.claim_job("runner-a", 30, JobKind.FULFIL)
    assert job is not None
    before = await store.record_send(job, "giftronaut", "key-1", "body-a")
    assert before.sends == 0
    record = await store.send_record("key-1")
    assert record.sends == 1 and record.unsettled_since is not None
    assert record.fingerprint == "body-a" and not record.last_answered
    await store.record_unanswered("key-1", answered=True)
    assert (await store.send_record("key-1")).last_answered
    await store.set_provider_order([request_id], "order-9", "key-1", fence=job)
    settled = await store.send_record("key-1")
    assert settled.unsettled_since is None and settled.sends == 1
    assert await store.attributed_orders("sandbox", clock.now() - timedelta(days=1)) == {"order-9"}


async def test_a_wait_postponed_by_a_clock_ahead_of_ours_is_due_now(
    store: Store, step_clock: Callable[[float], None]
) -> None:
    """A process whose clock ran minutes ahead postponed a poll: once the clocks agree again,
    the poll is due at once, not minutes later (an early look at an order is harmless)."""
    await _ordering_request_with_job(store)
    job = await store.claim_job("runner-a", 30, JobKind.FULFIL)
    assert job is not None
    step_clock(180)
    await store.postpone_job(job, clock.now() + timedelta(seconds=2), waiting=True)
    step_clock(0)
    assert await store.seconds_to_next_job() == 0
    assert await store.claim_job("runner-b", 30, JobKind.FULFIL) is not None


async def test_a_job_queued_to_run_at_once_by_a_clock_ahead_of_ours_is_due_now(
    store: Store, step_clock: Callable[[float], None]
) -> None:
    """A process whose clock ran minutes ahead approved a request, queueing its order and
    notification to run at once, and its clock was set right (or it died) before it ran them:
    they are due now for every runner, not once the true time reaches the wrong one. What it
    scheduled for later (the approvers' reminder) still waits."""
    step_clock(180)
    later = {JobKind.REMIND: clock.now() + timedelta(hours=1)}
    request, _ = await store.create_request(new_request(), "V1", scheduled=later)
    await store.transition(
        request.id,
        Status.PENDING_APPROVAL,
        Status.APPROVED,
        "UAPP",
        then=[JobKind.FULFIL, JobKind.NOTIFY],
    )
    step_clock(0)
    assert await store.seconds_to_next_job() == 0
    assert await store.claim_job("runner-b", 30, JobKind.FULFIL) is not None
    assert await store.claim_job("runner-b", 30, JobKind.NOTIFY) is not None
    assert await store.claim_job("runner-b", 30, JobKind.REMIND) is None


async def test_a_scheduled_job_waits_for_its_time_whatever_the_clocks(
    store: Store, step_clock: Callable[[float], None]
) -> None:
    await _ordering_request_with_job(store)
    job = await store.claim_job("runner-a", 30, JobKind.FULFIL)
    assert job is not None
    await store.postpone_job(job, clock.now() + timedelta(hours=1), waiting=False)
    assert await store.claim_job("runner-b", 30, JobKind.FULFIL) is None


def test_notifications_are_retried_for_a_whole_day_of_slack_being_down() -> None:
    """Attempts do not end a notification early, however fast the backoff went: its age
    does, after a day."""
    created = clock.now()

    def job(attempts: int, age: timedelta) -> Job:
        return Job(
            id=1,
            kind=JobKind.NOTIFY,
            request_id=1,
            payload={},
            attempts=attempts,
            lease="x",
            lease_seconds=30,
            created_at=created - age,
        )

    notify = DEFAULT_GIVE_UP[JobKind.NOTIFY]
    assert not notify.reached(job(300, timedelta(hours=23, minutes=59)))
    assert notify.reached(job(300, timedelta(hours=24, minutes=1)))
    assert not DEFAULT_GIVE_UP[JobKind.FULFIL].reached(job(10_000, timedelta(days=30)))
