"""Runs durable jobs from the store: leases, heartbeats, retries with backoff, graceful stop.

A job is claimed with a lease that a heartbeat keeps extending while it runs. If the process
dies, the lease expires and the next runner (after a restart) takes the job over; a graceful
stop gives leases back at once. A job whose lease cannot be renewed is cancelled, so it never
runs twice at once. Handlers must be safe to run again after a crash at any point: they resume
from the persisted state of the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from typing import Any

from bot.redaction import REDACTOR
from bot.store import Job, JobKind, Store

log = logging.getLogger(__name__)

JobHandler = Callable[[Job], Coroutine[Any, Any, None]]


class RunLater(Exception):
    """Raised by a handler that has nothing to do before ``until`` (a card scheduled by the
    provider): the job is run again then, without counting as a failed attempt."""

    def __init__(self, until: datetime) -> None:
        super().__init__(until.isoformat())
        self.until = until


# Slots per kind: long-polling orders never starve Slack notifications, and vice versa.
DEFAULT_CONCURRENCY: Mapping[JobKind, int] = {
    JobKind.FULFIL: 8,
    JobKind.NOTIFY: 4,
    JobKind.REMIND: 2,
    JobKind.EXPIRE: 2,
    JobKind.RESEND: 2,
}
# Attempts before a job is given up (recorded with its last error). Notifications stop after
# about a day of backoff; an order is never given up, because money may be at stake.
# A reminder is given up like a notification; an expiry never is, as it releases budget.
DEFAULT_GIVE_UP_AFTER: Mapping[JobKind, int | None] = {
    JobKind.FULFIL: None,
    JobKind.NOTIFY: 20,
    JobKind.REMIND: 20,
    JobKind.EXPIRE: None,
    # A resend catches the provider's and Slack's failures itself; one that still fails is
    # tried a little, then dropped (the asker can ask again). A repeat only sends the card to
    # its own recipient once more.
    JobKind.RESEND: 3,
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
        give_up_after: Mapping[JobKind, int | None] = DEFAULT_GIVE_UP_AFTER,
        poll_interval: float = 1.0,
        max_backoff: float = 300.0,
    ) -> None:
        self._store = store
        self._handlers = handlers
        self._lease_seconds = lease_seconds
        self._concurrency = concurrency
        self._give_up_after = give_up_after
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self.owner = f"runner-{uuid.uuid4().hex[:12]}"
        self._wakeup = asyncio.Event()
        self._running: dict[JobKind, set[asyncio.Task[None]]] = {kind: set() for kind in handlers}
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        """New work was queued: look for it now rather than at the next poll."""
        self._wakeup.set()

    def start(self) -> None:
        self._stopping = False
        self._loop_task = asyncio.create_task(self._claim_loop(), name="job-runner")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming; let running jobs finish for ``grace`` seconds, then cancel them and
        give their leases back so the next start resumes them immediately."""
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
            try:
                await self._claim_what_fits()
            except Exception:
                # The database may be briefly unavailable: keep the runner alive.
                log.exception("claiming jobs failed; trying again shortly")
            self._wakeup.clear()
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._poll_interval)

    async def _claim_what_fits(self) -> None:
        for kind, running in self._running.items():
            while not self._stopping and len(running) < self._concurrency.get(kind, 1):
                job = await self._store.claim_job(self.owner, self._lease_seconds, kind)
                if job is None:
                    break
                task = asyncio.create_task(self._run(job), name=f"job-{job.kind}-{job.id}")
                running.add(task)
                task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        for running in self._running.values():
            running.discard(task)
        self.wake()  # a slot is free, and jobs of the same request may now be runnable

    async def _run(self, job: Job) -> None:
        work: asyncio.Task[None] = asyncio.create_task(self._handlers[job.kind](job))
        heartbeat = asyncio.create_task(self._heartbeat(job, work))
        try:
            await work
        except RunLater as later:
            await self._store.postpone_job(job, later.until)
        except asyncio.CancelledError:
            if not work.cancelled():
                raise  # stop() cancelled us: release_jobs gives the lease back
            log.error(
                "job %s (%s, request %s) lost its lease and was stopped",
                job.id,
                job.kind,
                job.request_id,
            )
        except Exception as exc:
            # Kept in the jobs table: masked like the logs, as an exception's repr may quote data.
            error = REDACTOR.mask(repr(exc))[:500]
            limit = self._give_up_after.get(job.kind)
            if limit is not None and job.attempts >= limit:
                log.error(
                    "job %s (%s, request %s) gave up after %s attempts: %r",
                    job.id,
                    job.kind,
                    job.request_id,
                    job.attempts,
                    exc,
                )
                await self._store.finish_job(job, error=error)
            else:
                delay = min(2.0 ** min(job.attempts, 16), self._max_backoff)
                log.warning(
                    "job %s (%s, request %s) failed (attempt %s), retrying in %.0fs: %r",
                    job.id,
                    job.kind,
                    job.request_id,
                    job.attempts,
                    delay,
                    exc,
                )
                await self._store.retry_job(job, delay, error)
        else:
            await self._store.finish_job(job)
        finally:
            heartbeat.cancel()
            work.cancel()

    async def _heartbeat(self, job: Job, work: asyncio.Task[None]) -> None:
        """Extend the lease; if it cannot be renewed, stop the work before anyone else may
        claim the job (the lease still has two thirds of its time to run)."""
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            try:
                renewed = await self._store.extend_lease(job, self._lease_seconds)
            except Exception:
                log.exception("renewing the lease of job %s failed", job.id)
                renewed = False
            if not renewed:
                work.cancel()
                return
