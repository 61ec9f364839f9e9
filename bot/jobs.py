"""Runs durable jobs from the store: leases, heartbeats, retries with backoff, graceful stop.

A job is claimed with a lease that a heartbeat keeps extending while it runs. If the process
dies, the lease expires and the next runner (after a restart) takes the job over; a graceful
stop gives leases back at once. Handlers must be safe to run again after a crash at any point:
they resume from the persisted state of the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping

from bot.store import Job, JobKind, Store

log = logging.getLogger(__name__)

JobHandler = Callable[[Job], Awaitable[None]]


class GiveUp(Exception):
    """A handler's way to say retrying this job can never help; it is finished with an error."""


class JobRunner:
    """Claims and runs jobs, up to ``concurrency`` at a time."""

    def __init__(
        self,
        store: Store,
        handlers: Mapping[JobKind, JobHandler],
        *,
        lease_seconds: float = 30.0,
        concurrency: int = 8,
        poll_interval: float = 1.0,
        max_backoff: float = 300.0,
    ) -> None:
        self._store = store
        self._handlers = handlers
        self._lease_seconds = lease_seconds
        self._concurrency = concurrency
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self.owner = f"runner-{uuid.uuid4().hex[:12]}"
        self._wakeup = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """New work was queued: look for it now rather than at the next poll."""
        self._wakeup.set()

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._claim_loop(), name="job-runner")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming; let running jobs finish for ``grace`` seconds, then cancel them and
        give their leases back so the next start resumes them immediately."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._running:
            _, pending = await asyncio.wait(self._running, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._store.release_jobs(self.owner)

    async def wait_idle(self) -> None:
        """Wait until every queued job is done (tests and the demo wrap it in a timeout)."""
        while self._running or await self._store.open_job_count():
            self.wake()
            await asyncio.sleep(0.02)

    async def _claim_loop(self) -> None:
        while True:
            while len(self._running) < self._concurrency:
                job = await self._store.claim_job(self.owner, self._lease_seconds)
                if job is None:
                    break
                task = asyncio.create_task(self._run(job), name=f"job-{job.kind}-{job.id}")
                self._running.add(task)
                task.add_done_callback(self._finished)
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._poll_interval)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self.wake()  # a slot is free, and jobs of the same request may now be runnable

    async def _run(self, job: Job) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(job))
        try:
            await self._handlers[job.kind](job)
        except asyncio.CancelledError:
            raise  # stop() releases the lease
        except GiveUp as exc:
            log.error("job %s (%s, request %s) gave up: %s", job.id, job.kind, job.request_id, exc)
            await self._store.finish_job(job.id, self.owner, error=str(exc))
        except Exception as exc:
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
            await self._store.retry_job(job.id, self.owner, delay, repr(exc)[:500])
        else:
            await self._store.finish_job(job.id, self.owner)
        finally:
            heartbeat.cancel()

    async def _heartbeat(self, job: Job) -> None:
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            if not await self._store.extend_lease(job.id, self.owner, self._lease_seconds):
                log.error("lost the lease of job %s", job.id)
                return
