"""Runs durable jobs from the store: leases, heartbeats, retries with backoff, graceful stop.

A job is claimed with a lease that a heartbeat keeps extending while it runs. If the process
dies, the lease expires and any runner (after a restart, or in another process on the same
database) takes the job over; a graceful stop gives leases back at once.

Leases are timed, so a run can outlive its lease (a clock that steps, an event loop blocked
for longer than the lease) and find its job claimed again. Exactly-once does not rest on the
heartbeat noticing in time: each claim has its own token, and every side effect of a handler is
preceded by a guarded write that checks the token is still current (:meth:`Store.hold`, the
``fence`` of :meth:`Store.transition_all`, :meth:`Store.start_delivery`,
:meth:`Store.record_send`). A run whose claim was superseded fails that check with
:class:`LeaseLost` and stops before acting; the heartbeat that finds the claim gone cancels it
too. Handlers must be safe to run again after a crash at any point: they resume from the
persisted state of the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot import clock
from bot.log_context import context_for
from bot.metrics import Metrics
from bot.redaction import REDACTOR
from bot.store import DATABASE_ERRORS, Job, JobKind, LeaseLost, Store, database_problem

log = logging.getLogger(__name__)

JobHandler = Callable[[Job], Coroutine[Any, Any, None]]

# Recording how a run ended while the database cannot take it: first pause, longest pause.
_RECORD_AGAIN_FIRST, _RECORD_AGAIN_LONGEST = 0.5, 10.0


class RunLater(Exception):
    """Raised by a handler that has nothing to do before ``until``: the job is run again then,
    without counting as a failed attempt and without holding a slot meanwhile. ``waiting``: it
    waits on a provider (an order to poll, a rate limit), so it is still under way; otherwise
    it is scheduled (a card the provider sends at a set time)."""

    def __init__(self, until: datetime, *, waiting: bool = True) -> None:
        super().__init__(until.isoformat())
        self.until = until
        self.waiting = waiting


@dataclass(frozen=True)
class GiveUp:
    """When a failing job is given up: after ``attempts`` attempts, or once it is ``after``
    old (whichever comes first); never if neither is set."""

    attempts: int | None = None
    after: timedelta | None = None

    def reached(self, job: Job) -> bool:
        if self.attempts is not None and job.attempts >= self.attempts:
            return True
        return self.after is not None and clock.now() - job.created_at >= self.after


@dataclass(frozen=True)
class Retention:
    """How long finished jobs (done or given up) are kept: a pass every ``every`` seconds
    deletes those finished more than ``keep`` ago, ``batch`` at a time, so the table does not
    grow for ever. The audit trail of each request (``events``) is kept regardless."""

    keep: timedelta
    every: float = 300.0
    batch: int = 500
    # Batches in one pass: a large backlog is worked off over several passes, never
    # holding up the claims of the pass it runs in for long.
    batches_per_pass: int = 20


# Slots per kind: long-polling orders never starve Slack notifications, and vice versa.
DEFAULT_CONCURRENCY: Mapping[JobKind, int] = {
    JobKind.FULFIL: 8,
    JobKind.NOTIFY: 4,
    JobKind.REMIND: 2,
    JobKind.EXPIRE: 2,
    JobKind.RESEND: 2,
}
# When a failing job is given up (recorded with its last error). A notification or reminder
# is retried (backing off to every few minutes) for a whole day of Slack being unavailable;
# an order is never given up, because money may be at stake; an expiry never is, as it
# releases budget.
DEFAULT_GIVE_UP: Mapping[JobKind, GiveUp] = {
    JobKind.FULFIL: GiveUp(),
    JobKind.NOTIFY: GiveUp(after=timedelta(hours=24)),
    JobKind.REMIND: GiveUp(after=timedelta(hours=24)),
    JobKind.EXPIRE: GiveUp(),
    # A resend catches the provider's and Slack's failures itself; one that still fails is
    # tried a little, then dropped (the asker can ask again). A repeat only sends the card to
    # its own recipient once more.
    JobKind.RESEND: GiveUp(attempts=3),
}


class JobRunner:
    """Claims and runs jobs, up to a number at a time per kind."""

    def __init__(
        self,
        store: Store,
        handlers: Mapping[JobKind, JobHandler],
        *,
        lease_seconds: float = 30.0,
        concurrency: Mapping[JobKind, int] = DEFAULT_CONCURRENCY,
        give_up: Mapping[JobKind, GiveUp] = DEFAULT_GIVE_UP,
        poll_interval: float = 1.0,
        base_backoff: float = 2.0,
        max_backoff: float = 300.0,
        retention: Retention | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        """``metrics``: where retries and give-ups are counted (the runtime's; by default a
        registry of the runner's own)."""
        self._store = store
        self._handlers = handlers
        self._lease_seconds = lease_seconds
        self._concurrency = concurrency
        self._give_up = give_up
        self._poll_interval = poll_interval
        self._base_backoff = base_backoff
        self._max_backoff = max_backoff
        self._retention = retention
        # When the next retention pass is due, on the monotonic clock (the first: at once).
        self._next_pruning = float("-inf")
        self.owner = f"runner-{uuid.uuid4().hex[:12]}"
        self._wakeup = asyncio.Event()
        self._running: dict[JobKind, set[asyncio.Task[None]]] = {kind: set() for kind in handlers}
        # The ids of the jobs this runner runs: never claimed again by itself, whatever a
        # stepped clock says of their leases.
        self._running_ids: set[int] = set()
        # Other runners' leases as last seen (their claim token and expiry), and when this
        # runner first saw each unchanged: see ``_stale_leases``.
        self._leases_seen: dict[int, tuple[str, float]] = {}
        self._metrics = metrics or Metrics()
        self._loop_task: asyncio.Task[None] | None = None
        # Other processes' queued jobs (PostgreSQL): see ``Store.watch_jobs_queued``.
        self._watch_task: asyncio.Task[None] | None = None
        self._stopping = False
        # When the claim loop last went round (monotonic): readiness asks whether it is alive.
        self._last_round: float | None = None

    def wake(self) -> None:
        """New work was queued: look for it now rather than at the next poll."""
        self._wakeup.set()

    def ran_within(self, seconds: float) -> bool:
        """Whether the claim loop is running and went round in the last ``seconds``."""
        return (
            self._loop_task is not None
            and not self._loop_task.done()
            and self._last_round is not None
            and time.monotonic() - self._last_round <= seconds
        )

    def start(self) -> None:
        self._stopping = False
        self._loop_task = asyncio.create_task(self._claim_loop(), name="job-runner")
        self._watch_task = asyncio.create_task(
            self._store.watch_jobs_queued(self.wake), name="job-wakeups"
        )

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming; let running jobs finish for ``grace`` seconds, then cancel them and
        give their leases back so the next start resumes them immediately."""
        if self._watch_task is not None:
            self._watch_task.cancel()
            await asyncio.gather(self._watch_task, return_exceptions=True)
        if self._loop_task is not None:
            # Not cancelled: a claim is a short transaction, and one cut off mid-statement
            # could leave the shared connection unusable for the release below.
            self._stopping = True
            self.wake()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        running = self._all_running()
        if running:
            _, pending = await asyncio.wait(running, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._store.release_jobs(self.owner)

    async def wait_idle(self) -> None:
        """Wait until every queued job is done (tests and the demo wrap it in a timeout)."""
        while self._all_running() or await self._store.open_job_count():
            self.wake()
            await asyncio.sleep(0.02)

    def _all_running(self) -> set[asyncio.Task[None]]:
        return set().union(*self._running.values())

    async def _claim_loop(self) -> None:
        while not self._stopping:
            self._last_round = time.monotonic()
            try:
                await self._claim_what_fits()
            except Exception:
                # The database may be briefly unavailable: keep the runner alive.
                log.exception("claiming jobs failed; trying again shortly")
            self._wakeup.clear()
            if self._stopping:
                return
            await self._forget_finished_jobs()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), await self._idle_time())

    async def _forget_finished_jobs(self) -> None:
        """Apply the retention, if there is one and its pass is due (not on every loop)."""
        retention = self._retention
        if retention is None or time.monotonic() < self._next_pruning:
            return
        self._next_pruning = time.monotonic() + retention.every
        deleted = 0
        try:
            for _ in range(retention.batches_per_pass):
                cutoff = clock.now() - retention.keep
                batch = await self._store.delete_finished_jobs(cutoff, retention.batch)
                deleted += batch
                # A long pass (a backlog, a busy database) is work, not a stuck loop.
                self._last_round = time.monotonic()
                if batch < retention.batch:
                    break
        except Exception:
            # A busy or briefly unavailable database: the next pass tries again.
            log.exception("deleting finished jobs failed; trying again at the next pass")
        if deleted:
            log.info("deleted %s jobs finished more than %s ago", deleted, retention.keep)

    async def _idle_time(self) -> float:
        """How long to wait for new work: until the next job is due, at most a poll interval
        (work queued by another process that was not announced is seen by polling)."""
        try:
            due = await self._store.seconds_to_next_job()
        except Exception:
            log.exception("reading the job queue failed")
            return self._poll_interval
        return self._poll_interval if due is None else min(due, self._poll_interval)

    async def _claim_what_fits(self) -> None:
        stale = await self._stale_leases()
        for kind, running in self._running.items():
            while not self._stopping and len(running) < self._concurrency.get(kind, 1):
                job = await self._store.claim_job(
                    self.owner, self._lease_seconds, kind, running=sorted(self._running_ids)
                )
                while job is None and stale.get(kind):
                    job_id, lease = stale[kind].pop()
                    job = await self._store.take_over(
                        job_id, lease, self.owner, self._lease_seconds
                    )
                if job is None:
                    break
                self._running_ids.add(job.id)
                task = asyncio.create_task(
                    self._run(job),
                    name=f"job-{job.kind}-{job.id}",
                    # Everything the run logs is about this job and its reward.
                    context=context_for(f"job-{job.id}", job.request_id),
                )
                running.add(task)
                task.add_done_callback(functools.partial(self._finished, job))

    async def _stale_leases(self) -> dict[JobKind, list[tuple[int, str]]]:
        """Other runners' leases that nobody renewed for longer than a lease, as this runner
        saw on its own monotonic clock. A lease's expiry is written with its holder's wall
        clock: one written by a clock far ahead of ours would keep a dead holder's job
        waiting for as long, so a lease is also stale once it stops changing."""
        now = time.monotonic()
        seen: dict[int, tuple[str, float]] = {}
        stale: dict[JobKind, list[tuple[int, str]]] = {}
        for job_id, kind, lease in await self._store.leases_held(exclude=self.owner):
            first_seen = self._leases_seen.get(job_id, (lease, now))
            if first_seen[0] != lease:
                first_seen = (lease, now)
            seen[job_id] = first_seen
            if now - first_seen[1] > self._lease_seconds * 1.5:
                stale.setdefault(kind, []).append((job_id, lease))
        self._leases_seen = seen
        return stale

    def _finished(self, job: Job, task: asyncio.Task[None]) -> None:
        for running in self._running.values():
            running.discard(task)
        self._running_ids.discard(job.id)
        self.wake()  # a slot is free, and jobs of the same request may now be runnable

    async def _run(self, job: Job) -> None:
        log.debug("job %s (%s) started, attempt %s", job.id, job.kind, job.attempts)
        work: asyncio.Task[None] = asyncio.create_task(self._handlers[job.kind](job))
        heartbeat = asyncio.create_task(self._heartbeat(job, work))
        try:
            await work
        except RunLater as later:
            postpone = functools.partial(
                self._store.postpone_job, job, later.until, waiting=later.waiting
            )
            await self._recorded(job, postpone)
        except LeaseLost:
            # Another run holds the job now: it carries on from what is stored.
            log.warning(
                "job %s (%s, request %s) lost its claim and stopped before its next step",
                job.id,
                job.kind,
                job.request_id,
            )
        except asyncio.CancelledError:
            if not work.cancelled():
                raise  # stop() cancelled us: release_jobs gives the lease back
            log.warning(
                "job %s (%s, request %s) lost its claim and was stopped",
                job.id,
                job.kind,
                job.request_id,
            )
        except Exception as exc:
            await self._failed(job, exc)
        else:
            await self._recorded(job, functools.partial(self._store.finish_job, job))
            log.debug("job %s (%s) done", job.id, job.kind)
        finally:
            heartbeat.cancel()
            work.cancel()

    async def _failed(self, job: Job, exc: Exception) -> None:
        """Retry with exponential backoff, or give the job up (kept with its error)."""
        # Kept in the jobs table: masked like the logs, as an exception's repr may quote data.
        error = REDACTOR.mask(repr(exc))[:500]
        if self._give_up.get(job.kind, GiveUp()).reached(job):
            log.error(
                "job %s (%s, request %s) gave up after %s attempts: %r",
                job.id,
                job.kind,
                job.request_id,
                job.attempts,
                exc,
            )
            await self._recorded(job, functools.partial(self._store.finish_job, job, error=error))
            self._metrics.jobs_given_up.labels(job.kind.value).inc()
            return
        delay = min(self._base_backoff * 2.0 ** min(job.attempts - 1, 16), self._max_backoff)
        log.warning(
            "job %s (%s, request %s) failed (attempt %s), retrying in %.1fs: %r",
            job.id,
            job.kind,
            job.request_id,
            job.attempts,
            delay,
            exc,
        )
        await self._recorded(job, functools.partial(self._store.retry_job, job, delay, error))
        self._metrics.jobs_retried.labels(job.kind.value).inc()

    async def _recorded(self, job: Job, record: Callable[[], Awaitable[None]]) -> None:
        """Record how ``job``'s run ended (``record``), again and again while the database
        cannot take it. Left unrecorded, the job would keep this claim until its lease expired
        and then run again from the start, repeating what it had done (a notification posted
        twice). Meanwhile the job keeps its slot, this runner does not claim it, and the
        heartbeat keeps its lease; if another runner took it over all the same, the guarded
        write records nothing."""
        pause = _RECORD_AGAIN_FIRST
        while True:
            try:
                await record()
                return
            except DATABASE_ERRORS as exc:
                log.warning(
                    "recording how job %s (%s) ended failed (%s); again in %.1fs",
                    job.id,
                    job.kind,
                    database_problem(exc),
                    pause,
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, _RECORD_AGAIN_LONGEST)

    async def _heartbeat(self, job: Job, work: asyncio.Task[None]) -> None:
        """Extend the lease. A renewal that fails (the database busy) is tried again at the
        next beat: the fences keep a superseded run from acting meanwhile. A claim found to be
        superseded stops the work at once."""
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            try:
                current = await self._store.extend_lease(job)
            except Exception:
                log.exception("renewing the lease of job %s failed; trying again", job.id)
                continue
            if not current:
                work.cancel()
                return
