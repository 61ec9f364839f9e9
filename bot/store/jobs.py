"""The durable job queue: claims with leases, their fencing, and when the next job is due.

A claim's token fences its side effects: once a lease lapsed and another run claimed the job,
the older run's next side effect raises :class:`LeaseLost` before it happens.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot import clock
from bot.store.base import StoreBase
from bot.store.sql import Connection, now_timestamp, timestamp
from bot.store.wakeups import notify_jobs_queued

# A job postponed, or queued to run at once, by a process whose clock was more than this
# ahead of ours.
_AHEAD = 5.0
# A claim that did not count as an attempt (a postponement, a release) gives its attempt back.
_ONE_ATTEMPT_LESS = "CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END"


class JobKind(StrEnum):
    """Durable work, run by :class:`bot.jobs.runner.JobRunner`."""

    # Carry an approved request through ordering, polling and delivery.
    FULFIL = "fulfil"
    # Show a status change in Slack (summary, cards, thread, requester DM).
    NOTIFY = "notify"
    # Nudge the approvers of a request still waiting for a decision (scheduled).
    REMIND = "remind"
    # End a request nobody decided in time (scheduled).
    EXPIRE = "expire"
    # Send a delivered card again, as its recipient or an approver asked.
    RESEND = "resend"


class Job(BaseModel):
    """A claimed job: its lease is held by one runner until it finishes or the lease expires."""

    model_config = ConfigDict(frozen=True)

    id: int
    kind: JobKind
    request_id: int
    payload: dict[str, Any]
    attempts: int
    # This claim's token: a job whose lease expired and was claimed again cannot be
    # finished or extended through an older claim, and its side effects are fenced by it
    # (:meth:`Store.hold`).
    lease: str
    lease_seconds: float
    created_at: datetime


class LeaseLost(Exception):
    """This run's claim on its job is no longer the current one (its lease lapsed and another
    run claimed the job, or the job was finished): it must not perform another side effect."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} ({job.kind}, request {job.request_id}) lost its claim")
        self.job = job


def _due_early(alias: str = "") -> str:
    """SQL: a job whose ``run_after`` a clock more than ``_AHEAD`` ahead of ours wrote is due
    now, whatever it says: a wait on a provider postponed by that clock, or a job it queued to
    run at once (``run_after`` still its ``created_at``: never tried, postponed or retried
    since). Its wait cannot be measured, and looking early is harmless."""
    j = f"{alias}." if alias else ""
    return (
        f"(({j}waiting = 1 AND {j}waited_from > :ahead)"
        f" OR ({j}run_after = {j}created_at AND {j}created_at > :ahead))"
    )


async def insert_job(
    db: Connection,
    kind: JobKind,
    request_id: int,
    payload: dict[str, Any],
    now: str,
    run_after: str | None = None,
) -> None:
    """Queue a job in the caller's transaction (so it is queued with what made it needed)."""
    # Jobs of one kind and request run in id order, one at a time (see ``claim``), which
    # takes id order to be commit order. On PostgreSQL an id is drawn at the insert, not the
    # commit: two transactions queuing for one request (two "Check again" clicks on a shared
    # order) could commit the higher id first, and it would be claimed beside the lower one.
    # Queuing for a request and kind one transaction at a time keeps the two orders the same.
    await db.lock(f"jobs {kind} {request_id}")
    await db.run(
        "INSERT INTO jobs (kind, request_id, payload, run_after, created_at) "
        "VALUES (:kind, :request_id, :payload, :run_after, :now)",
        kind=kind,
        request_id=request_id,
        payload=json.dumps(payload),
        run_after=run_after or now,
        now=now,
    )
    await notify_jobs_queued(db)


async def require_current_claim(db: Connection, fence: Job | None) -> None:
    """In a write transaction: go on only if ``fence`` (a claim) is still current."""
    if fence is not None and not await _extend_claim(db, fence):
        raise LeaseLost(fence)


async def _extend_claim(db: Connection, job: Job) -> bool:
    extended = await db.run(
        "UPDATE jobs SET lease_expires = :expires "
        "WHERE id = :id AND lease_owner = :lease AND done_at IS NULL",
        expires=now_timestamp(job.lease_seconds),
        id=job.id,
        lease=job.lease,
    )
    return extended == 1


async def _claim(
    db: Connection, owner: str, lease_seconds: float, which: str, **parameters: object
) -> Job | None:
    """Give the job that ``which`` (a condition) selects a new claim of ``owner``'s, with a
    fresh token, for ``lease_seconds``; ``None`` if no job matched."""
    lease = f"{owner}:{uuid.uuid4().hex}"
    claimed = await db.rows(
        "UPDATE jobs SET lease_owner = :lease, lease_expires = :expires, "  # noqa: S608
        f"attempts = attempts + 1, nudged = 0 WHERE {which} "
        "RETURNING id, kind, request_id, payload, attempts, created_at",
        lease=lease,
        expires=now_timestamp(lease_seconds),
        **parameters,
    )
    if not claimed:
        return None
    row = claimed[0]
    return Job(
        id=row["id"],
        kind=JobKind(row["kind"]),
        request_id=row["request_id"],
        payload=json.loads(row["payload"]),
        attempts=row["attempts"],
        lease=lease,
        lease_seconds=lease_seconds,
        created_at=datetime.fromisoformat(row["created_at"]),
    )


class JobQueue(StoreBase):
    """Claiming, holding, finishing and postponing jobs."""

    async def claim_job(
        self,
        owner: str,
        lease_seconds: float,
        kind: JobKind,
        running: Collection[int] = (),
    ) -> Job | None:
        """Lease the oldest runnable job of ``kind``. Jobs of one kind and one request run one at
        a time, in order, so Slack shows a request's changes in the order they happened; the
        kinds are independent, so a notification Slack keeps refusing never holds up an order.

        A lease that looks expired is taken over, however it came to look so (a crash, or a
        clock that stepped): the claim gets a new token, and the older run's next side effect
        fails its fence (:meth:`hold`). ``running``: jobs this runner is running itself, never
        taken over from itself. A job waiting on a provider that was postponed by a clock
        ahead of ours, or queued by one to run at once, is due now (see ``_due_early``)."""
        not_running = "AND j.id NOT IN :running" if running else ""
        async with self._transaction() as db:
            # PostgreSQL: processes claim at the same time; each skips the rows another is
            # claiming instead of waiting for them (and then finding them taken).
            skip_claimed = "FOR UPDATE OF j SKIP LOCKED" if db.is_postgres else ""
            return await _claim(
                db,
                owner,
                lease_seconds,
                f"""id = (
                       SELECT j.id FROM jobs j
                       WHERE j.kind = :kind AND j.done_at IS NULL
                         AND (j.run_after <= :now OR {_due_early("j")})
                         AND (j.lease_expires IS NULL OR j.lease_expires < :now) {not_running}
                         AND NOT EXISTS (
                             SELECT 1 FROM jobs e WHERE e.request_id = j.request_id
                               AND e.kind = j.kind AND e.done_at IS NULL AND e.id < j.id)
                       ORDER BY j.id LIMIT 1 {skip_claimed})""",  # noqa: S608
                kind=kind,
                now=now_timestamp(),
                ahead=now_timestamp(_AHEAD),
                **({"running": tuple(running)} if running else {}),
            )

    async def leases_held(self, exclude: str) -> list[tuple[int, JobKind, str]]:
        """The unfinished jobs other runners than ``exclude`` hold: id, kind, and the lease
        (its claim token and expiry, which every renewal changes)."""
        rows = await self._fetch(
            "SELECT id, kind, lease_owner || ' ' || lease_expires AS lease FROM jobs "
            "WHERE done_at IS NULL AND lease_owner IS NOT NULL "
            "AND lease_owner NOT LIKE :mine ESCAPE '!'",
            mine=_claims_of(exclude),
        )
        return [(int(r["id"]), JobKind(r["kind"]), str(r["lease"])) for r in rows]

    async def take_over(
        self, job_id: int, lease: str, owner: str, lease_seconds: float
    ) -> Job | None:
        """Claim a job whose holder stopped renewing ``lease`` (as :meth:`leases_held` showed
        it); ``None`` if the lease changed meanwhile (renewed, finished or taken)."""
        async with self._transaction() as db:
            return await _claim(
                db,
                owner,
                lease_seconds,
                "id = :id AND done_at IS NULL AND lease_owner || ' ' || lease_expires = :held",
                id=job_id,
                held=lease,
            )

    async def extend_lease(self, job: Job) -> bool:
        """Keep holding ``job`` for another lease; False if this claim is no longer the
        current one. Decided by the claim's token alone, never by comparing clocks: a lease
        nobody took over is still this run's, however late the renewal."""
        async with self._transaction() as db:
            return await _extend_claim(db, job)

    async def hold(self, job: Job) -> None:
        """The fence before a side effect: renew this claim if it is still the current one,
        else raise :class:`LeaseLost` (the run must stop before acting)."""
        if not await self.extend_lease(job):
            raise LeaseLost(job)

    async def finish_job(self, job: Job, error: str | None = None) -> None:
        """Done (``error`` says why a job was given up on). Only this claim can finish it."""
        async with self._transaction() as db:
            await db.run(
                "UPDATE jobs SET done_at = :now, lease_owner = NULL, lease_expires = NULL, "
                "waiting = 0, last_error = :error WHERE id = :id AND lease_owner = :lease",
                now=now_timestamp(),
                error=error,
                id=job.id,
                lease=job.lease,
            )

    async def retry_job(self, job: Job, delay: float, error: str) -> None:
        """Run the failed job again ``delay`` seconds from now (a backoff: under way)."""
        async with self._transaction() as db:
            await db.run(
                "UPDATE jobs SET run_after = :run_after, waiting = 1, waited_from = :now, "
                "lease_owner = NULL, lease_expires = NULL, last_error = :error "
                "WHERE id = :id AND lease_owner = :lease",
                run_after=now_timestamp(delay),
                now=now_timestamp(),
                error=error,
                id=job.id,
                lease=job.lease,
            )

    async def postpone_job(self, job: Job, until: datetime, *, waiting: bool) -> None:
        """The job has nothing to do before ``until``: run it again then (not a failure).
        ``waiting``: it is waiting on a provider (still under way, see :meth:`open_job_count`),
        not scheduled. A webhook that nudged it meanwhile makes it due at once."""
        async with self._transaction() as db:
            await db.run(
                "UPDATE jobs SET run_after = CASE WHEN nudged = 1 THEN :now ELSE :until END, "  # noqa: S608
                "nudged = 0, waiting = :waiting, waited_from = :now, lease_owner = NULL, "
                f"lease_expires = NULL, attempts = {_ONE_ATTEMPT_LESS} "
                "WHERE id = :id AND lease_owner = :lease",
                now=now_timestamp(),
                until=timestamp(until),
                waiting=int(waiting),
                id=job.id,
                lease=job.lease,
            )

    async def release_jobs(self, owner: str) -> None:
        """Give back every lease ``owner`` holds (a graceful shutdown), runnable at once."""
        async with self._transaction() as db:
            await db.run(
                "UPDATE jobs SET lease_owner = NULL, lease_expires = NULL, "  # noqa: S608
                f"attempts = {_ONE_ATTEMPT_LESS} "
                "WHERE lease_owner LIKE :mine ESCAPE '!' AND done_at IS NULL",
                mine=_claims_of(owner),
            )

    async def open_job_count(self) -> int:
        """Jobs not done that are due or under way (a job waiting on a provider is under way;
        scheduled ones not yet due are not counted: an expiry three days away does not keep
        anyone waiting)."""
        rows = await self._fetch(
            "SELECT COUNT(*) AS open FROM jobs WHERE done_at IS NULL "
            "AND (attempts > 0 OR waiting = 1 OR run_after <= :now)",
            now=now_timestamp(),
        )
        return int(rows[0]["open"])

    async def due_jobs_by_kind(self) -> dict[JobKind, tuple[int, float]]:
        """Per kind with any: how many unfinished jobs are due now (held or not), and how many
        seconds the oldest of them has been due. Scheduled jobs not yet due are not counted;
        a job waiting on a provider counts again once its next look is due."""
        now = clock.now()
        rows = await self._fetch(
            "SELECT kind, COUNT(*) AS due, MIN(run_after) AS oldest FROM jobs "
            "WHERE done_at IS NULL AND run_after <= :now GROUP BY kind",
            now=timestamp(now),
        )
        return {
            JobKind(row["kind"]): (
                int(row["due"]),
                (now - datetime.fromisoformat(row["oldest"])).total_seconds(),
            )
            for row in rows
        }

    async def seconds_to_next_job(self) -> float | None:
        """How long until the next job that nobody holds is due (0 if one is); ``None`` if
        there is none."""
        rows = await self._fetch(
            f"SELECT MIN(CASE WHEN {_due_early()} THEN :now ELSE run_after END) AS due "  # noqa: S608
            "FROM jobs WHERE done_at IS NULL AND lease_owner IS NULL",
            ahead=now_timestamp(_AHEAD),
            now=now_timestamp(),
        )
        if rows[0]["due"] is None:
            return None
        due = datetime.fromisoformat(rows[0]["due"])
        return max((due - clock.now()).total_seconds(), 0.0)

    async def delete_finished_jobs(self, finished_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` jobs that finished (done, or given up with their error)
        before ``finished_before``, the oldest first; how many went. Only ``done_at`` marks a
        finished job, so a job running, waiting or due is never touched; neither is the
        request's audit trail (``events``), kept for ever. One small batch per transaction
        keeps the write lock short for the claims and webhooks waiting on it."""
        async with self._transaction() as db:
            return await db.run(
                "DELETE FROM jobs WHERE id IN ("
                "  SELECT id FROM jobs WHERE done_at IS NOT NULL AND done_at < :before"
                "  ORDER BY done_at LIMIT :limit)",
                before=timestamp(finished_before),
                limit=limit,
            )

    async def nudge_order(self, provider: str, provider_order_id: str) -> bool:
        """A provider said this order changed: make the job that carries it due now, in
        whichever process it runs (or runs next). Whether the order is one of ours."""
        async with self._transaction() as db:
            nudged = (
                await db.run(
                    "UPDATE jobs SET nudged = 1, "
                    "run_after = CASE WHEN run_after < :now THEN run_after ELSE :now END "
                    "WHERE kind = :kind AND done_at IS NULL AND request_id IN ("
                    "  SELECT COALESCE(order_owner, id) FROM reward_requests"
                    "  WHERE provider = :provider AND provider_order_id = :order_id)",
                    now=now_timestamp(),
                    kind=JobKind.FULFIL,
                    provider=provider,
                    order_id=provider_order_id,
                )
                > 0
            )
            if nudged:
                await notify_jobs_queued(db)
        if nudged:
            self._jobs_queued()
        return nudged


def _claims_of(owner: str) -> str:
    """A ``LIKE`` pattern (escape ``!``) matching every claim token of ``owner``'s."""
    escaped = owner.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"{escaped}:%"
