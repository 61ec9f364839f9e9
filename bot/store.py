"""Durable state in SQLite: reward requests, the Slack messages that show them, and the audit trail.

Status changes happen only in :meth:`Store.transition`, a guarded ``UPDATE ... WHERE id=? AND
status=?`` that reports whether it won; the audit event is written in the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiosqlite
from pydantic import BaseModel, ConfigDict

from bot import clock
from bot.domain import (
    RELEASES_BUDGET,
    TRANSITIONS,
    Money,
    NewRewardRequest,
    RewardRequest,
    Status,
    is_announced,
    month_title,
)
from bot.errors import NotAllowed, OverBudget, RequestNotFound
from providers.base import SendRecord

# Append only: each entry migrates the schema from version N to N+1.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE reward_requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        requester_id TEXT NOT NULL,
        recipient_id TEXT NOT NULL,
        origin_channel_id TEXT NOT NULL,
        amount TEXT NOT NULL,
        currency TEXT NOT NULL,
        provider TEXT NOT NULL,
        product_id TEXT NOT NULL,
        product_name TEXT NOT NULL,
        message TEXT NOT NULL,
        status TEXT NOT NULL,
        idempotency_key TEXT UNIQUE,
        provider_order_id TEXT,
        charged_amount TEXT,
        charged_currency TEXT,
        decided_by TEXT,
        decision_reason TEXT,
        failure_reason TEXT,
        summary_channel TEXT,
        summary_ts TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX reward_requests_status ON reward_requests(status);
    CREATE TABLE approval_cards (
        request_id INTEGER NOT NULL REFERENCES reward_requests(id),
        approver_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        ts TEXT NOT NULL,
        PRIMARY KEY (request_id, approver_id)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id INTEGER NOT NULL REFERENCES reward_requests(id),
        kind TEXT NOT NULL,
        from_status TEXT,
        to_status TEXT,
        actor TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}',
        at TEXT NOT NULL
    );
    CREATE INDEX events_request ON events(request_id, id);
    """,
    # Slack's view id of the submitted modal: a resubmission (after Slack timed out waiting
    # for our ack) must not store the request twice.
    """
    ALTER TABLE reward_requests ADD COLUMN submission_key TEXT;
    CREATE UNIQUE INDEX reward_requests_submission ON reward_requests(submission_key);
    ALTER TABLE reward_requests ADD COLUMN recipient_name TEXT;
    ALTER TABLE reward_requests ADD COLUMN recipient_email TEXT;
    """,
    # Durable work: fulfilment and Slack notifications survive crashes and outages.
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        request_id INTEGER NOT NULL REFERENCES reward_requests(id),
        payload TEXT NOT NULL DEFAULT '{}',
        attempts INTEGER NOT NULL DEFAULT 0,
        run_after TEXT NOT NULL,
        lease_owner TEXT,
        lease_expires TEXT,
        last_error TEXT,
        created_at TEXT NOT NULL,
        done_at TEXT
    );
    CREATE INDEX jobs_open ON jobs(done_at, request_id, id);
    ALTER TABLE reward_requests ADD COLUMN delivery_started_at TEXT;
    INSERT INTO jobs (kind, request_id, run_after, created_at)
        SELECT 'fulfil', id, strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'),
               strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')
        FROM reward_requests WHERE status IN ('approved', 'ordering');
    """,
    # The approval policy: team routing, two-step approval, budgets, and permalinks for export.
    """
    ALTER TABLE reward_requests ADD COLUMN team TEXT;
    ALTER TABLE reward_requests ADD COLUMN approvals_required INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE reward_requests ADD COLUMN first_approved_by TEXT;
    ALTER TABLE reward_requests ADD COLUMN budget_amount TEXT;
    ALTER TABLE reward_requests ADD COLUMN budget_currency TEXT;
    ALTER TABLE reward_requests ADD COLUMN budget_month TEXT;
    ALTER TABLE reward_requests ADD COLUMN summary_permalink TEXT;
    CREATE INDEX reward_requests_budget ON reward_requests(budget_month, team);
    CREATE INDEX reward_requests_created ON reward_requests(created_at);
    """,
    # Scheduled delivery.
    """
    ALTER TABLE reward_requests ADD COLUMN deliver_at TEXT;
    """,
    # Bulk rewards: the requests of one submission, decided together, shown in one thread.
    """
    ALTER TABLE reward_requests ADD COLUMN batch_id INTEGER REFERENCES reward_requests(id);
    CREATE INDEX reward_requests_batch ON reward_requests(batch_id);
    """,
    # Orders scheduled natively by the provider, cancellable until its cut-off.
    """
    ALTER TABLE reward_requests ADD COLUMN cancel_before TEXT;
    """,
    # Several requests of a batch in one provider order.
    """
    ALTER TABLE reward_requests ADD COLUMN order_key TEXT;
    ALTER TABLE reward_requests ADD COLUMN order_owner INTEGER REFERENCES reward_requests(id);
    CREATE INDEX reward_requests_order_owner ON reward_requests(order_owner);
    """,
    # Exactly-once beyond one healthy process: every fact that prevents a repeat order or DM is
    # durable. ``order_sends`` records each send of an order's idempotency key before it is
    # made; ``delivery_claim`` is the job claim that started a delivery DM. A job waiting on a
    # provider (``waiting``) is postponed instead of holding a slot, and a webhook ``nudged``
    # it; ``waited_from`` is when, by the clock of the process that postponed it. Orders sent
    # before this version whose answer never came are unsettled from their
    # claim on, so they are reconciled, never re-sent blindly.
    """
    ALTER TABLE jobs ADD COLUMN waiting INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN waited_from TEXT;
    ALTER TABLE jobs ADD COLUMN nudged INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE reward_requests ADD COLUMN delivery_claim TEXT;
    CREATE INDEX reward_requests_provider_order ON reward_requests(provider, provider_order_id);
    CREATE TABLE order_sends (
        order_key TEXT PRIMARY KEY,
        provider TEXT NOT NULL,
        fingerprint TEXT,
        first_sent_at TEXT NOT NULL,
        last_sent_at TEXT NOT NULL,
        sends INTEGER NOT NULL DEFAULT 0,
        unsettled_since TEXT,
        last_answered INTEGER NOT NULL DEFAULT 0
    );
    INSERT OR IGNORE INTO order_sends (order_key, provider, first_sent_at, last_sent_at,
                                       sends, unsettled_since)
        SELECT COALESCE(order_key, idempotency_key), provider, updated_at, updated_at, 1,
               updated_at
        FROM reward_requests
        WHERE status = 'ordering' AND provider_order_id IS NULL
          AND COALESCE(order_key, idempotency_key) IS NOT NULL;
    """,
    # A delivered card is redirected to another address only once its recipient confirmed it.
    """
    CREATE TABLE email_changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id INTEGER NOT NULL REFERENCES reward_requests(id),
        email TEXT NOT NULL,
        requested_by TEXT NOT NULL,
        requested_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        outcome TEXT,
        decided_at TEXT
    );
    CREATE INDEX email_changes_request ON email_changes(request_id);
    """,
    # Who ended an address change (its recipient, or rewardbot: their own Slack email, expiry),
    # and at most one change waiting per request, whichever process asks. The previous version
    # let a change be proposed once an earlier one had lapsed unanswered, leaving both
    # waiting: all but the newest of a request end as expired first, with their events.
    """
    ALTER TABLE email_changes ADD COLUMN decided_by TEXT;
    CREATE TEMP TABLE lapsed_email_changes AS
        SELECT id FROM email_changes WHERE outcome IS NULL AND id NOT IN (
            SELECT MAX(id) FROM email_changes WHERE outcome IS NULL GROUP BY request_id);
    INSERT INTO events (request_id, kind, actor, detail, at)
        SELECT request_id, 'email_change_expired', 'rewardbot',
               json_object('to', 'email ' || substr(email, 1, 1) || '***@'
                                 || substr(email, instr(email, '@') + 1), 'change', id),
               expires_at
        FROM email_changes WHERE id IN (SELECT id FROM lapsed_email_changes) ORDER BY id;
    UPDATE email_changes SET outcome = 'expired', decided_at = expires_at,
                             decided_by = 'rewardbot'
        WHERE id IN (SELECT id FROM lapsed_email_changes);
    DROP TABLE lapsed_email_changes;
    CREATE UNIQUE INDEX email_changes_one_waiting ON email_changes(request_id)
        WHERE outcome IS NULL;
    """,
)

# Columns a transition may set alongside the status.
_TRANSITION_COLUMNS = frozenset(
    {
        "idempotency_key",
        "provider_order_id",
        "first_approved_by",
        "decided_by",
        "decision_reason",
        "failure_reason",
        "charged_amount",
        "charged_currency",
        "recipient_name",
        "recipient_email",
        "delivery_started_at",
        "cancel_before",
        "order_key",
        "order_owner",
        "delivery_claim",
    }
)
SYSTEM_ACTOR = "rewardbot"
# A waiting job postponed by a process whose clock was more than this ahead of ours.
_AHEAD = 5.0


class Event(BaseModel):
    """One line of the audit trail."""

    model_config = ConfigDict(frozen=True)

    request_id: int
    kind: str
    from_status: Status | None
    to_status: Status | None
    actor: str
    detail: dict[str, Any]
    at: datetime


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


class DeliveryStart(BaseModel):
    """The start of a request's delivery DM, recorded before the DM is sent."""

    model_config = ConfigDict(frozen=True)

    started_at: datetime
    # The claim that started it, if not this run: its DM may have been sent, or be in flight.
    other_claim: str | None = None


@dataclass(frozen=True)
class Change:
    """One guarded status change for :meth:`Store.transition_all`."""

    request_id: int
    from_: Status
    to: Status
    detail: dict[str, Any] = field(default_factory=dict)
    then: tuple[JobKind, ...] = ()
    then_at: datetime | None = None
    # The request the ``then`` jobs are queued for, if not this one: the work on a shared
    # provider order is all queued on its owner, so it runs one job at a time.
    then_for: int | None = None
    # Columns set in the same statement (see ``_TRANSITION_COLUMNS``).
    columns: Mapping[str, str | int | None] = field(default_factory=dict)


class _LostRace(Exception):
    """A change of a batch lost its race: the whole transaction is rolled back."""


class EmailChangeOutcome(StrEnum):
    """How an address change ended; ``None`` while it waits for its recipient."""

    # By the recipient in Slack, or by rewardbot for their own Slack email: the card goes there.
    CONFIRMED = "confirmed"
    # The recipient said it is not their address.
    DECLINED = "declined"
    # Nobody confirmed it in time.
    EXPIRED = "expired"
    # The recipient could not be asked in Slack.
    WITHDRAWN = "withdrawn"


class EmailChange(BaseModel):
    """An approver's correction of the address a delivered card is emailed to, which takes
    effect only once confirmed (:class:`EmailChangeOutcome`)."""

    model_config = ConfigDict(frozen=True)

    id: int
    request_id: int
    email: str
    requested_by: str
    expires_at: datetime
    outcome: EmailChangeOutcome | None
    decided_by: str | None


def mask_email(email: str) -> str:
    """``jane@home.example`` → ``j***@home.example``: enough for people who know the address to
    recognise it, so the audit trail and shared messages show addresses this way."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


class BudgetLimit(BaseModel):
    """A monthly ceiling a new request must fit under, checked in the transaction that stores
    it, so two requests made at once cannot both take the last of a budget."""

    model_config = ConfigDict(frozen=True)

    # Whose budget, as the refusal names it: "team Engineering's", "your".
    owner: str
    # The team whose spend counts; ``None`` counts the requester's own requests.
    team: str | None
    limit: Money


class ApprovalCard(BaseModel):
    """Where an approver's Approve / Reject card was posted."""

    model_config = ConfigDict(frozen=True)

    # The approver whose DM holds the card, or the approvals channel's id.
    approver_id: str
    channel: str
    ts: str


def _now(plus_seconds: float = 0.0) -> str:
    return _timestamp(clock.now() + timedelta(seconds=plus_seconds))


def _timestamp(when: datetime) -> str:
    # One fixed format (UTC, microseconds) so timestamps compare correctly as text in SQL.
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _money(amount: str | None, currency: str | None) -> Money | None:
    if amount is None or currency is None:
        return None
    return Money(amount=Decimal(amount), currency=currency)


def _row_to_request(row: aiosqlite.Row) -> RewardRequest:
    return RewardRequest(
        id=row["id"],
        requester_id=row["requester_id"],
        recipient_id=row["recipient_id"],
        origin_channel_id=row["origin_channel_id"],
        face_value=Money(amount=Decimal(row["amount"]), currency=row["currency"]),
        provider=row["provider"],
        product_id=row["product_id"],
        product_name=row["product_name"],
        message=row["message"],
        status=Status(row["status"]),
        idempotency_key=row["idempotency_key"],
        provider_order_id=row["provider_order_id"],
        charged=_money(row["charged_amount"], row["charged_currency"]),
        team=row["team"],
        approvals_required=row["approvals_required"],
        budget_amount=_money(row["budget_amount"], row["budget_currency"]),
        budget_month=row["budget_month"],
        first_approved_by=row["first_approved_by"],
        summary_permalink=row["summary_permalink"],
        deliver_at=datetime.fromisoformat(row["deliver_at"]) if row["deliver_at"] else None,
        batch_id=row["batch_id"],
        order_key=row["order_key"],
        order_owner=row["order_owner"],
        cancel_before=(
            datetime.fromisoformat(row["cancel_before"]) if row["cancel_before"] else None
        ),
        decided_by=row["decided_by"],
        decision_reason=row["decision_reason"],
        failure_reason=row["failure_reason"],
        summary_channel=row["summary_channel"],
        summary_ts=row["summary_ts"],
        recipient_name=row["recipient_name"],
        recipient_email=row["recipient_email"],
        delivery_started_at=(
            datetime.fromisoformat(row["delivery_started_at"])
            if row["delivery_started_at"]
            else None
        ),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


def _job(row: aiosqlite.Row, lease: str, lease_seconds: float) -> Job:
    """A claimed job from ``RETURNING id, kind, request_id, payload, attempts, created_at``."""
    return Job(
        id=row[0],
        kind=JobKind(row[1]),
        request_id=row[2],
        payload=json.loads(row[3]),
        attempts=row[4],
        lease=lease,
        lease_seconds=lease_seconds,
        created_at=datetime.fromisoformat(row[5]),
    )


def _row_to_send_record(row: aiosqlite.Row) -> SendRecord:
    def when(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    return SendRecord(
        fingerprint=row["fingerprint"],
        first_sent_at=when(row["first_sent_at"]),
        last_sent_at=when(row["last_sent_at"]),
        sends=row["sends"],
        unsettled_since=when(row["unsettled_since"]),
        last_answered=bool(row["last_answered"]),
    )


async def _rows(
    db: aiosqlite.Connection, sql: str, parameters: tuple[object, ...] = ()
) -> list[aiosqlite.Row]:
    """Run a statement and read all its rows in one step on aiosqlite's thread.

    Never a cursor held across awaits: a caller cancelled between reading rows would leave the
    statement unfinished, and an unfinished write (``UPDATE ... RETURNING``) makes every later
    COMMIT on the shared connection fail with "SQL statements in progress".
    """
    return list(await db.execute_fetchall(sql, parameters))


class Store:
    """All reads and writes of rewardbot's database."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection
        # One connection is shared by every coroutine: a transaction must not interleave with
        # another coroutine's statements, and a read must not see a half-done transaction.
        self._lock = asyncio.Lock()
        # Called after a commit that queued jobs, so the runner starts them without polling.
        self.on_jobs_queued: Callable[[], None] | None = None

    def _jobs_queued(self) -> None:
        if self.on_jobs_queued is not None:
            self.on_jobs_queued()

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        """Open (creating or upgrading) the bot's database."""
        connection = await aiosqlite.connect(str(path), isolation_level=None)
        connection.row_factory = aiosqlite.Row
        await connection.execute("PRAGMA journal_mode=WAL")
        await connection.execute("PRAGMA foreign_keys=ON")
        await connection.execute("PRAGMA busy_timeout=5000")
        store = cls(connection)
        try:
            await store._migrate()
        except BaseException:
            await connection.close()
            raise
        return store

    async def close(self) -> None:
        async with self._lock:  # never in the middle of someone's transaction
            await self._db.close()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                # Inside the try: a COMMIT that fails must roll back too, or the connection
                # would stay inside this transaction and every later BEGIN would fail.
                await self._db.execute("COMMIT")
            except BaseException:
                # Always roll back, even if BEGIN looks unfinished: aiosqlite runs statements
                # in order on its own thread, so a BEGIN whose await was cancelled still runs,
                # and this ROLLBACK runs after it. Without one the next BEGIN would fail.
                with contextlib.suppress(sqlite3.OperationalError):
                    await self._db.execute("ROLLBACK")
                raise

    async def _fetch(self, sql: str, parameters: tuple[object, ...]) -> list[aiosqlite.Row]:
        async with self._lock:
            return await _rows(self._db, sql, parameters)

    @classmethod
    async def open_read_only(cls, absolute_path: str) -> Store:
        """Open an existing database for reading while the bot may be writing it (reports):
        no write lock is ever taken, so a busy bot never blocks the reader, nor it the bot."""
        connection = await aiosqlite.connect(
            f"file:{quote(absolute_path)}?mode=ro", isolation_level=None, uri=True
        )
        connection.row_factory = aiosqlite.Row
        store = cls(connection)
        try:
            rows = await store._fetch("SELECT version FROM schema_version", ())
            version = rows[0][0] if rows else 0
        except BaseException:
            await connection.close()
            raise
        if version != len(_MIGRATIONS):
            await connection.close()
            raise RuntimeError(
                f"the database is at schema version {version} and this rewardbot reads "
                f"version {len(_MIGRATIONS)}: start this rewardbot once to upgrade it"
            )
        return store

    async def _migrate(self) -> None:
        async with self._transaction() as db:
            await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            rows = await _rows(db, "SELECT version FROM schema_version")
            row = rows[0] if rows else None
            current = row[0] if row else 0
            if current > len(_MIGRATIONS):
                raise RuntimeError(
                    f"the database is at schema version {current}, newer than this rewardbot "
                    f"({len(_MIGRATIONS)}): upgrade rewardbot"
                )
            if row is None:
                await db.execute("INSERT INTO schema_version (version) VALUES (0)")
            for script in _MIGRATIONS[current:]:
                for statement in filter(str.strip, script.split(";")):
                    await db.execute(statement)
            await db.execute("UPDATE schema_version SET version = ?", (len(_MIGRATIONS),))

    async def create_request(
        self,
        new: NewRewardRequest,
        submission_key: str,
        *,
        limits: Sequence[BudgetLimit] = (),
        scheduled: Mapping[JobKind, datetime] | None = None,
    ) -> tuple[RewardRequest, bool]:
        """One request: see :meth:`create_requests`."""
        stored, is_new = await self.create_requests(
            [new], submission_key, limits=limits, scheduled=scheduled
        )
        return stored[0], is_new

    async def create_requests(
        self,
        news: Sequence[NewRewardRequest],
        submission_key: str,
        *,
        limits: Sequence[BudgetLimit] = (),
        scheduled: Mapping[JobKind, datetime] | None = None,
    ) -> tuple[list[RewardRequest], bool]:
        """Store the requests of one submission, all or none; returns them and whether they
        are new. A second submission with the same ``submission_key`` returns the first one's.

        Several requests (one per recipient) form a batch led by the first: one announcement,
        one decision. Storing reserves their budget amounts, which count against each of
        ``limits`` until a request ends without a purchase; raises :class:`OverBudget` if
        they do not all fit. ``scheduled`` jobs (reminder, expiry) are queued for the first.
        """
        now = _now()
        async with self._transaction() as db:
            # Checked inside the write transaction: two identical submissions cannot both
            # insert, and two requests cannot both spend the last of a budget.
            found = await _rows(
                db, "SELECT id FROM reward_requests WHERE submission_key = ?", (submission_key,)
            )
            existing = int(found[0][0]) if found else None
            if existing is None:
                for limit in limits:
                    await self._check_budget(db, news, limit)
                head = await self._insert_request(db, news[0], submission_key, now, None)
                for number, new in enumerate(news[1:], start=2):
                    await self._insert_request(db, new, f"{submission_key}#{number}", now, head)
                if len(news) > 1:
                    await db.execute(
                        "UPDATE reward_requests SET batch_id = ? WHERE id = ?", (head, head)
                    )
                for kind, when in (scheduled or {}).items():
                    await self._insert_job(db, kind, head, {}, now, run_after=_timestamp(when))
        if existing is not None:
            return await self.batch(await self.get(existing)), False
        self._jobs_queued()
        return await self.batch(await self.get(head)), True

    async def batch(self, request: RewardRequest) -> list[RewardRequest]:
        """The requests submitted together with ``request`` (itself included), first first."""
        if request.batch_id is None:
            return [request]
        rows = await self._fetch(
            "SELECT * FROM reward_requests WHERE batch_id = ? ORDER BY id", (request.batch_id,)
        )
        return [_row_to_request(row) for row in rows]

    async def _check_budget(
        self, db: aiosqlite.Connection, news: Sequence[NewRewardRequest], limit: BudgetLimit
    ) -> None:
        """All of ``news`` (one requester, one month) must fit in what ``limit`` has left."""
        month_key = news[0].budget_month
        assert month_key is not None
        amount = sum((n.budget_amount.amount for n in news if n.budget_amount), Decimal(0))
        used = await self._reserved(db, month_key, limit, news[0].requester_id)
        if used + amount <= limit.limit.amount:
            return
        left = Money(
            amount=max(limit.limit.amount - used, Decimal(0)), currency=limit.limit.currency
        )
        raise OverBudget(
            f"This would take {limit.owner} {month_title(month_key)} rewards over budget: "
            f"{left} left of {limit.limit}."
        )

    @staticmethod
    async def _reserved(
        db: aiosqlite.Connection, month: str, limit: BudgetLimit, requester_id: str
    ) -> Decimal:
        """What the month's live requests hold of ``limit`` (summed as Decimal, not in SQL)."""
        who, value = ("team", limit.team) if limit.team else ("requester_id", requester_id)
        released = ",".join("?" * len(RELEASES_BUDGET))
        rows = await _rows(
            db,
            f"SELECT budget_amount FROM reward_requests WHERE budget_month = ? AND {who} = ? "  # noqa: S608
            f"AND budget_currency = ? AND status NOT IN ({released})",
            (month, value, limit.limit.currency, *RELEASES_BUDGET),
        )
        return sum((Decimal(row[0]) for row in rows), Decimal(0))

    async def _insert_request(
        self,
        db: aiosqlite.Connection,
        new: NewRewardRequest,
        submission_key: str,
        now: str,
        batch_id: int | None,
    ) -> int:
        """The new request and its audit event, in the caller's transaction, and its
        announcement unless it joins a batch (the batch's first request announces them all)."""
        budget = new.budget_amount
        cursor = await db.execute(
            """INSERT INTO reward_requests (requester_id, recipient_id, origin_channel_id,
                   amount, currency, provider, product_id, product_name, message, status,
                   submission_key, team, approvals_required, budget_amount, budget_currency,
                   budget_month, deliver_at, batch_id, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                new.requester_id,
                new.recipient_id,
                new.origin_channel_id,
                str(new.face_value.amount),
                new.face_value.currency,
                new.provider,
                new.product_id,
                new.product_name,
                new.message,
                Status.PENDING_APPROVAL,
                submission_key,
                new.team,
                new.approvals_required,
                str(budget.amount) if budget else None,
                budget.currency if budget else None,
                new.budget_month,
                _timestamp(new.deliver_at) if new.deliver_at else None,
                batch_id,
                now,
                now,
            ),
        )
        request_id = cursor.lastrowid
        assert request_id is not None
        await self._insert_event(
            db,
            request_id,
            "created",
            None,
            Status.PENDING_APPROVAL,
            new.requester_id,
            {"team": new.team, "approvals_required": new.approvals_required, "batch": batch_id},
            now,
        )
        if batch_id is None:
            await self._insert_job(
                db, JobKind.NOTIFY, request_id, {"status": Status.PENDING_APPROVAL}, now
            )
        return request_id

    async def orders_owned_by(self, owner_id: int) -> list[list[RewardRequest]]:
        """The unfinished (approved or ordering) requests whose orders ``owner_id``'s ``fulfil``
        job places, one list per provider order (requests sharing one come together), in
        order."""
        rows = await self._fetch(
            "SELECT * FROM reward_requests "
            "WHERE (order_owner = ? OR (order_owner IS NULL AND id = ?)) "
            "AND status IN (?, ?) ORDER BY id",
            (owner_id, owner_id, Status.APPROVED, Status.ORDERING),
        )
        orders: dict[str | None, list[RewardRequest]] = {}
        for request in map(_row_to_request, rows):
            orders.setdefault(request.order_key or request.idempotency_key, []).append(request)
        return list(orders.values())

    async def requests_with_order(
        self, provider: str, provider_order_id: str
    ) -> list[RewardRequest]:
        """The requests a provider order was placed for (several if it is shared), in order."""
        rows = await self._fetch(
            "SELECT * FROM reward_requests WHERE provider = ? AND provider_order_id = ? "
            "ORDER BY id",
            (provider, provider_order_id),
        )
        return [_row_to_request(row) for row in rows]

    async def get(self, request_id: int) -> RewardRequest:
        rows = await self._fetch("SELECT * FROM reward_requests WHERE id = ?", (request_id,))
        if not rows:
            raise RequestNotFound(f"There is no reward request #{request_id}.")
        return _row_to_request(rows[0])

    async def requests_created(self, since: datetime, until: datetime) -> list[RewardRequest]:
        """Requests made at or after ``since`` and before ``until``, oldest first."""
        rows = await self._fetch(
            "SELECT * FROM reward_requests WHERE created_at >= ? AND created_at < ? ORDER BY id",
            (_timestamp(since), _timestamp(until)),
        )
        return [_row_to_request(row) for row in rows]

    async def recent_requests_by(self, requester_id: str, limit: int) -> list[RewardRequest]:
        """The requester's latest requests, newest first."""
        rows = await self._fetch(
            "SELECT * FROM reward_requests WHERE requester_id = ? ORDER BY id DESC LIMIT ?",
            (requester_id, limit),
        )
        return [_row_to_request(row) for row in rows]

    async def requests_budgeted_in(self, month: str) -> list[RewardRequest]:
        """Requests counted against budgets of ``month`` (``2026-11``), released ones included."""
        rows = await self._fetch(
            "SELECT * FROM reward_requests WHERE budget_month = ? ORDER BY id", (month,)
        )
        return [_row_to_request(row) for row in rows]

    async def requests_in(self, statuses: frozenset[Status]) -> list[RewardRequest]:
        marks = ",".join("?" * len(statuses))
        rows = await self._fetch(
            f"SELECT * FROM reward_requests WHERE status IN ({marks}) ORDER BY id",  # noqa: S608
            tuple(statuses),
        )
        return [_row_to_request(row) for row in rows]

    async def transition(
        self,
        request_id: int,
        from_: Status,
        to: Status,
        actor: str,
        *,
        detail: Mapping[str, Any] | None = None,
        then: Sequence[JobKind] = (),
        fence: Job | None = None,
        **columns: str | None,
    ) -> bool:
        """Move the request from ``from_`` to ``to`` if it is still in ``from_``.

        Returns whether this call won. ``columns`` are set in the same statement, so whoever
        wins the race also owns what is written with it (the decider, the idempotency key...).
        In the same transaction, the change is queued for announcement in Slack (unless it is
        a quiet one) and the ``then`` jobs are queued: a crash cannot separate them. (Changes
        of several requests at once, scheduled jobs and budget re-reservation:
        :meth:`transition_all`.)
        """
        change = Change(request_id, from_, to, dict(detail or {}), tuple(then), columns=columns)
        return await self.transition_all([change], actor, fence=fence)

    async def transition_all(
        self,
        changes: Sequence[Change],
        actor: str,
        *,
        reserve: Sequence[BudgetLimit] = (),
        fence: Job | None = None,
    ) -> bool:
        """Make every change or none (see :meth:`transition`): a batch of requests decided
        together never ends up half decided, whatever decision races with it. A change's
        ``then`` jobs run at its ``then_at``, if given. With ``reserve``, the requests' budget
        amounts are checked against those limits in the same transaction (a retry re-reserves
        what a failure released); raises :class:`OverBudget` if they no longer fit. With
        ``fence`` (a job's claim), raises :class:`LeaseLost` unless that claim is current."""
        for change in changes:
            if change.to not in TRANSITIONS[change.from_]:
                raise ValueError(f"{change.from_} → {change.to} is not an allowed transition")
            unknown = set(change.columns) - _TRANSITION_COLUMNS
            if unknown:
                raise ValueError(f"transition cannot set {sorted(unknown)}")
        now = _now()
        try:
            async with self._transaction() as db:
                await self._fenced(db, fence)
                if reserve:
                    await self._reserve_again(db, changes, reserve)
                for change in changes:
                    if not await self._apply(db, change, actor, now):
                        raise _LostRace  # rolls the whole transaction back
        except _LostRace:
            return False
        self._jobs_queued()
        return True

    async def _reserve_again(
        self, db: aiosqlite.Connection, changes: Sequence[Change], limits: Sequence[BudgetLimit]
    ) -> None:
        current = []
        for change in changes:
            found = await _rows(
                db, "SELECT * FROM reward_requests WHERE id = ?", (change.request_id,)
            )
            if found and (request := _row_to_request(found[0])).status is change.from_:
                current.append(request)
        if current:
            for limit in limits:
                await self._check_budget(db, current, limit)

    async def _apply(self, db: aiosqlite.Connection, change: Change, actor: str, now: str) -> bool:
        """One guarded status change, its audit event and its jobs; whether it won."""
        assignments = "".join(f", {name} = ?" for name in change.columns)
        cursor = await db.execute(
            f"UPDATE reward_requests SET status = ?, updated_at = ?{assignments} "  # noqa: S608
            "WHERE id = ? AND status = ?",
            (change.to, now, *change.columns.values(), change.request_id, change.from_),
        )
        if cursor.rowcount != 1:
            return False
        request_id, from_, to = change.request_id, change.from_, change.to
        await self._insert_event(db, request_id, "transition", from_, to, actor, change.detail, now)
        if is_announced(from_, to):
            await self._insert_job(
                db, JobKind.NOTIFY, request_id, {"status": to, "from": from_}, now
            )
        run_after = _timestamp(change.then_at) if change.then_at else None
        for kind in change.then:
            owner = change.then_for or request_id
            await self._insert_job(db, kind, owner, {}, now, run_after=run_after)
        return True

    # -- durable jobs --------------------------------------------------------------------

    @staticmethod
    async def _insert_job(
        db: aiosqlite.Connection,
        kind: JobKind,
        request_id: int,
        payload: dict[str, Any],
        now: str,
        run_after: str | None = None,
    ) -> None:
        await db.execute(
            "INSERT INTO jobs (kind, request_id, payload, run_after, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (kind, request_id, json.dumps(payload), run_after or now, now),
        )

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
        ahead of ours is due now: its wait cannot be measured, and looking early is harmless."""
        now = _now()
        lease = f"{owner}:{uuid.uuid4().hex}"
        excluded = ",".join("?" * len(running))
        not_running = f"AND j.id NOT IN ({excluded})" if running else ""
        async with self._transaction() as db:
            claimed = await _rows(
                db,
                f"""UPDATE jobs SET lease_owner = ?, lease_expires = ?, attempts = attempts + 1,
                          nudged = 0
                   WHERE id = (
                       SELECT j.id FROM jobs j
                       WHERE j.kind = ? AND j.done_at IS NULL
                         AND (j.run_after <= ? OR (j.waiting = 1 AND j.waited_from > ?))
                         AND (j.lease_expires IS NULL OR j.lease_expires < ?) {not_running}
                         AND NOT EXISTS (
                             SELECT 1 FROM jobs e WHERE e.request_id = j.request_id
                               AND e.kind = j.kind AND e.done_at IS NULL AND e.id < j.id)
                       ORDER BY j.id LIMIT 1)
                   RETURNING id, kind, request_id, payload, attempts, created_at""",  # noqa: S608
                (lease, _now(lease_seconds), kind, now, _now(_AHEAD), now, *running),
            )
        return _job(claimed[0], lease, lease_seconds) if claimed else None

    async def leases_held(self, exclude: str) -> list[tuple[int, JobKind, str]]:
        """The unfinished jobs other runners than ``exclude`` hold: id, kind, and the lease
        (its claim token and expiry, which every renewal changes)."""
        rows = await self._fetch(
            "SELECT id, kind, lease_owner || ' ' || lease_expires FROM jobs "
            "WHERE done_at IS NULL AND lease_owner IS NOT NULL AND lease_owner NOT LIKE ? || ':%'",
            (exclude,),
        )
        return [(int(r[0]), JobKind(r[1]), str(r[2])) for r in rows]

    async def take_over(
        self, job_id: int, lease: str, owner: str, lease_seconds: float
    ) -> Job | None:
        """Claim a job whose holder stopped renewing ``lease`` (as :meth:`leases_held` showed
        it); ``None`` if the lease changed meanwhile (renewed, finished or taken)."""
        claim = f"{owner}:{uuid.uuid4().hex}"
        async with self._transaction() as db:
            rows = await _rows(
                db,
                "UPDATE jobs SET lease_owner = ?, lease_expires = ?, attempts = attempts + 1, "
                "nudged = 0 WHERE id = ? AND done_at IS NULL "
                "AND lease_owner || ' ' || lease_expires = ? "
                "RETURNING id, kind, request_id, payload, attempts, created_at",
                (claim, _now(lease_seconds), job_id, lease),
            )
        return _job(rows[0], claim, lease_seconds) if rows else None

    async def extend_lease(self, job: Job) -> bool:
        """Keep holding ``job`` for another lease; False if this claim is no longer the
        current one. Decided by the claim's token alone, never by comparing clocks: a lease
        nobody took over is still this run's, however late the renewal."""
        async with self._transaction() as db:
            return await self._extend(db, job)

    async def hold(self, job: Job) -> None:
        """The fence before a side effect: renew this claim if it is still the current one,
        else raise :class:`LeaseLost` (the run must stop before acting)."""
        if not await self.extend_lease(job):
            raise LeaseLost(job)

    @staticmethod
    async def _extend(db: aiosqlite.Connection, job: Job) -> bool:
        cursor = await db.execute(
            "UPDATE jobs SET lease_expires = ? WHERE id = ? AND lease_owner = ? "
            "AND done_at IS NULL",
            (_now(job.lease_seconds), job.id, job.lease),
        )
        return cursor.rowcount == 1

    async def _fenced(self, db: aiosqlite.Connection, fence: Job | None) -> None:
        """In a write transaction: go on only if ``fence`` (a claim) is still current."""
        if fence is not None and not await self._extend(db, fence):
            raise LeaseLost(fence)

    async def finish_job(self, job: Job, error: str | None = None) -> None:
        """Done (``error`` says why a job was given up on). Only this claim can finish it."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE jobs SET done_at = ?, lease_owner = NULL, lease_expires = NULL, "
                "waiting = 0, last_error = ? WHERE id = ? AND lease_owner = ?",
                (_now(), error, job.id, job.lease),
            )

    async def retry_job(self, job: Job, delay: float, error: str) -> None:
        """Run the failed job again ``delay`` seconds from now (a backoff: under way)."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE jobs SET run_after = ?, waiting = 1, waited_from = ?, "
                "lease_owner = NULL, lease_expires = NULL, last_error = ? "
                "WHERE id = ? AND lease_owner = ?",
                (_now(delay), _now(), error, job.id, job.lease),
            )

    async def postpone_job(self, job: Job, until: datetime, *, waiting: bool) -> None:
        """The job has nothing to do before ``until``: run it again then (not a failure).
        ``waiting``: it is waiting on a provider (still under way, see :meth:`open_job_count`),
        not scheduled. A webhook that nudged it meanwhile makes it due at once."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE jobs SET run_after = CASE WHEN nudged = 1 THEN ? ELSE ? END, "
                "nudged = 0, waiting = ?, waited_from = ?, lease_owner = NULL, "
                "lease_expires = NULL, attempts = MAX(attempts - 1, 0) "
                "WHERE id = ? AND lease_owner = ?",
                (_now(), _timestamp(until), int(waiting), _now(), job.id, job.lease),
            )

    async def release_jobs(self, owner: str) -> None:
        """Give back every lease ``owner`` holds (a graceful shutdown), runnable at once."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE jobs SET lease_owner = NULL, lease_expires = NULL, "
                "attempts = MAX(attempts - 1, 0) "
                "WHERE lease_owner LIKE ? || ':%' AND done_at IS NULL",
                (owner,),
            )

    async def open_job_count(self) -> int:
        """Jobs not done that are due or under way (a job waiting on a provider is under way;
        scheduled ones not yet due are not counted: an expiry three days away does not keep
        anyone waiting)."""
        rows = await self._fetch(
            "SELECT COUNT(*) FROM jobs WHERE done_at IS NULL "
            "AND (attempts > 0 OR waiting = 1 OR run_after <= ?)",
            (_now(),),
        )
        return int(rows[0][0])

    async def seconds_to_next_job(self) -> float | None:
        """How long until the next job that nobody holds is due (0 if one is); ``None`` if
        there is none."""
        rows = await self._fetch(
            "SELECT MIN(CASE WHEN waiting = 1 AND waited_from > ? THEN ? ELSE run_after END) "
            "FROM jobs WHERE done_at IS NULL AND lease_owner IS NULL",
            (_now(_AHEAD), _now()),
        )
        if rows[0][0] is None:
            return None
        due = datetime.fromisoformat(rows[0][0])
        return max((due - clock.now()).total_seconds(), 0.0)

    async def nudge_order(self, provider: str, provider_order_id: str) -> bool:
        """A provider said this order changed: make the job that carries it due now, in
        whichever process it runs (or runs next). Whether the order is one of ours."""
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE jobs SET run_after = MIN(run_after, ?), nudged = 1 "
                "WHERE kind = ? AND done_at IS NULL AND request_id IN ("
                "  SELECT COALESCE(order_owner, id) FROM reward_requests"
                "  WHERE provider = ? AND provider_order_id = ?)",
                (_now(), JobKind.FULFIL, provider, provider_order_id),
            )
            nudged = cursor.rowcount > 0
        if nudged:
            self._jobs_queued()
        return nudged

    # -- what prevents a repeat order or DM ------------------------------------------------

    async def start_delivery(self, request_id: int, fence: Job) -> DeliveryStart:
        """Record, before the delivery DM, that this claim starts it (with a
        ``delivery_started`` event); if a delivery was started already, say by whom."""
        now = _now()
        async with self._transaction() as db:
            await self._fenced(db, fence)
            rows = await _rows(
                db,
                "SELECT delivery_started_at, delivery_claim FROM reward_requests WHERE id = ?",
                (request_id,),
            )
            started, claim = rows[0][0], rows[0][1]
            if started is not None:
                other = None if claim == fence.lease else (claim or "an earlier version")
                return DeliveryStart(started_at=datetime.fromisoformat(started), other_claim=other)
            await db.execute(
                "UPDATE reward_requests SET delivery_started_at = ?, delivery_claim = ? "
                "WHERE id = ?",
                (now, fence.lease, request_id),
            )
            await self._insert_event(
                db, request_id, "delivery_started", None, None, SYSTEM_ACTOR, {}, now
            )
        return DeliveryStart(started_at=datetime.fromisoformat(now))

    async def take_over_delivery(self, request_id: int, fence: Job, other_claim: str) -> bool:
        """This claim carries on a delivery another one started (whose DM was not found);
        False if someone else took it over first."""
        async with self._transaction() as db:
            await self._fenced(db, fence)
            cursor = await db.execute(
                "UPDATE reward_requests SET delivery_claim = ? WHERE id = ? "
                "AND (delivery_claim = ? OR (delivery_claim IS NULL AND ? = 'an earlier version'))",
                (fence.lease, request_id, other_claim, other_claim),
            )
            return cursor.rowcount == 1

    async def send_record(self, order_key: str) -> SendRecord:
        """What is known about the sends of ``order_key`` (empty if never sent)."""
        rows = await self._fetch("SELECT * FROM order_sends WHERE order_key = ?", (order_key,))
        return _row_to_send_record(rows[0]) if rows else SendRecord()

    async def record_send(
        self, fence: Job, provider: str, order_key: str, fingerprint: str
    ) -> SendRecord:
        """Written before each send of an order, fenced by the claim: the key is (again) sent
        now and its outcome is unknown until :meth:`settle_sends`. Returns the record as it
        was before this send."""
        now = _now()
        async with self._transaction() as db:
            await self._fenced(db, fence)
            rows = await _rows(db, "SELECT * FROM order_sends WHERE order_key = ?", (order_key,))
            before = _row_to_send_record(rows[0]) if rows else SendRecord()
            await db.execute(
                """INSERT INTO order_sends (order_key, provider, fingerprint, first_sent_at,
                       last_sent_at, sends, unsettled_since, last_answered)
                   VALUES (?, ?, ?, ?, ?, 1, ?, 0)
                   ON CONFLICT (order_key) DO UPDATE SET
                       fingerprint = COALESCE(fingerprint, excluded.fingerprint),
                       last_sent_at = excluded.last_sent_at, sends = sends + 1,
                       unsettled_since = COALESCE(unsettled_since, excluded.unsettled_since),
                       last_answered = 0""",
                (order_key, provider, fingerprint, now, now, now),
            )
        return before

    async def record_unanswered(self, order_key: str, *, answered: bool) -> None:
        """The last send's outcome is unknown (``answered``: the provider did answer, with an
        error that does not say whether it placed the order)."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE order_sends SET last_answered = ? WHERE order_key = ?",
                (int(answered), order_key),
            )

    async def settle_sends(self, order_key: str) -> None:
        """The provider said what became of ``order_key``'s sends (an order, or none)."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE order_sends SET unsettled_since = NULL WHERE order_key = ?", (order_key,)
            )

    async def attributed_orders(self, provider: str, since: datetime) -> frozenset[str]:
        """The provider's order ids already known to be some reward's, for requests changed
        since ``since``: a lookup for an order of unknown outcome must never take one of them."""
        rows = await self._fetch(
            "SELECT DISTINCT provider_order_id FROM reward_requests WHERE provider = ? "
            "AND provider_order_id IS NOT NULL AND updated_at >= ?",
            (provider, _timestamp(since)),
        )
        return frozenset(str(r[0]) for r in rows)

    async def set_provider_order(
        self, request_ids: Sequence[int], provider_order_id: str, order_key: str, fence: Job
    ) -> None:
        """The provider's id for the order of these requests (all of one order), with an
        ``order_placed`` event each, in one transaction that also settles the key's sends."""
        now = _now()
        async with self._transaction() as db:
            await self._fenced(db, fence)
            for request_id in request_ids:
                await db.execute(
                    "UPDATE reward_requests SET provider_order_id = ?, updated_at = ? WHERE id = ?",
                    (provider_order_id, now, request_id),
                )
                detail: dict[str, Any] = {"provider_order_id": provider_order_id}
                if len(request_ids) > 1:
                    detail["cards_in_order"] = len(request_ids)
                await self._insert_event(
                    db, request_id, "order_placed", None, None, SYSTEM_ACTOR, detail, now
                )
            await db.execute(
                "UPDATE order_sends SET unsettled_since = NULL WHERE order_key = ?", (order_key,)
            )

    async def set_summary_message(
        self, request_id: int, channel: str, ts: str, permalink: str | None
    ) -> None:
        async with self._transaction() as db:
            await db.execute(
                "UPDATE reward_requests SET summary_channel = ?, summary_ts = ?, "
                "summary_permalink = ? WHERE id = ?",
                (channel, ts, permalink, request_id),
            )

    async def queue_resend(self, request_id: int, actor: str, cooldown: timedelta) -> bool:
        """Queue a ``resend`` job of the card to where it goes now, for ``actor``, unless they
        asked for one within ``cooldown``; the check and the queueing are one transaction, so
        a double click resends once."""
        now = _now()
        async with self._transaction() as db:
            recent = await _rows(
                db,
                "SELECT 1 FROM events WHERE request_id = ? AND actor = ? "
                "AND kind = 'resend_requested' AND at > ?",
                (request_id, actor, _now(-cooldown.total_seconds())),
            )
            if recent:
                return False
            detail = {"to": "recipient"}
            await self._insert_event(
                db, request_id, "resend_requested", None, None, actor, detail, now
            )
            await self._insert_job(db, JobKind.RESEND, request_id, {"actor": actor}, now)
        self._jobs_queued()
        return True

    # -- where a delivered card is emailed ------------------------------------------------

    async def propose_email_change(
        self, request_id: int, email: str, actor: str, expires_at: datetime
    ) -> EmailChange:
        """``actor`` asks for the card to be emailed to ``email`` from now on: stored waiting
        (until ``expires_at``), with an ``email_change_requested`` event and the ``resend``
        job that asks the recipient (``ask``), in one transaction. One change waits at a time:
        raises :class:`NotAllowed` while another does; one whose time ran out unanswered is
        ended first, as ``expired``."""
        now = _now()
        async with self._transaction() as db:
            lapsed = await _rows(
                db,
                "UPDATE email_changes SET outcome = ?, decided_at = ?, decided_by = ? "
                "WHERE request_id = ? AND outcome IS NULL AND expires_at <= ? "
                "RETURNING id, email",
                (EmailChangeOutcome.EXPIRED, now, SYSTEM_ACTOR, request_id, now),
            )
            for row in lapsed:
                detail = {"to": f"email {mask_email(row[1])}", "change": row[0]}
                await self._insert_event(
                    db, request_id, "email_change_expired", None, None, SYSTEM_ACTOR, detail, now
                )
            waiting = await _rows(
                db,
                "SELECT 1 FROM email_changes WHERE request_id = ? AND outcome IS NULL",
                (request_id,),
            )
            if waiting:
                raise NotAllowed(
                    "Another address for this card is waiting for its recipient's "
                    "confirmation; it must be confirmed, refused or expire first."
                )
            inserted = await _rows(
                db,
                "INSERT INTO email_changes (request_id, email, requested_by, requested_at, "
                "expires_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
                (request_id, email, actor, now, _timestamp(expires_at)),
            )
            change_id = int(inserted[0][0])
            detail = {
                "to": f"email {mask_email(email)}",
                "change": change_id,
                "expires_at": _timestamp(expires_at),
            }
            await self._insert_event(
                db, request_id, "email_change_requested", None, None, actor, detail, now
            )
            payload = {"actor": actor, "ask": change_id}
            await self._insert_job(db, JobKind.RESEND, request_id, payload, now)
        self._jobs_queued()
        return await self.email_change(change_id)

    async def email_change(self, change_id: int) -> EmailChange:
        rows = await self._fetch("SELECT * FROM email_changes WHERE id = ?", (change_id,))
        if not rows:
            raise RequestNotFound(f"There is no address change #{change_id}.")
        row = rows[0]
        return EmailChange(
            id=row["id"],
            request_id=row["request_id"],
            email=row["email"],
            requested_by=row["requested_by"],
            expires_at=datetime.fromisoformat(row["expires_at"]),
            outcome=row["outcome"],
            decided_by=row["decided_by"],
        )

    async def decide_email_change(
        self,
        change_id: int,
        outcome: EmailChangeOutcome,
        actor: str,
        detail: Mapping[str, Any] | None = None,
    ) -> bool:
        """End a waiting change once, with its ``email_change_<outcome>`` event: ``expired``
        only once its time is up, any other outcome only before. A confirmation queues, in
        the same transaction, the ``resend`` job that has the provider email the card there
        (``change``), on behalf of the approver who asked. False if the change had ended, or
        its time had run out (or not) meanwhile."""
        now = _now()
        async with self._transaction() as db:
            ended = await _rows(
                db,
                "UPDATE email_changes SET outcome = ?, decided_at = ?, decided_by = ? "
                "WHERE id = ? AND outcome IS NULL AND (expires_at <= ?) = ? "
                "RETURNING request_id, email, requested_by",
                (
                    outcome,
                    now,
                    actor,
                    change_id,
                    now,
                    outcome is EmailChangeOutcome.EXPIRED,
                ),
            )
            if not ended:
                return False
            request_id, email, requested_by = ended[0]
            event = {"to": f"email {mask_email(email)}", "change": change_id, **(detail or {})}
            await self._insert_event(
                db, request_id, f"email_change_{outcome}", None, None, actor, event, now
            )
            if outcome is EmailChangeOutcome.CONFIRMED:
                payload = {"actor": requested_by, "change": change_id}
                await self._insert_job(db, JobKind.RESEND, request_id, payload, now)
        self._jobs_queued()
        return True

    async def apply_email_change(
        self, change_id: int, actor: str, detail: Mapping[str, Any]
    ) -> None:
        """The provider now emails the card to a confirmed change's address: it replaces the
        request's, so later resends find the card under it, with a ``resent`` event. Nothing
        else ever replaces a delivered card's address."""
        now = _now()
        async with self._transaction() as db:
            updated = await _rows(
                db,
                "UPDATE reward_requests SET recipient_email = c.email, updated_at = ? "
                "FROM email_changes c WHERE c.id = ? AND c.request_id = reward_requests.id "
                "AND c.outcome = ? RETURNING reward_requests.id",
                (now, change_id, EmailChangeOutcome.CONFIRMED),
            )
            if not updated:
                raise NotAllowed(f"Address change #{change_id} was not confirmed.")
            request_id = int(updated[0][0])
            await self._insert_event(db, request_id, "resent", None, None, actor, dict(detail), now)

    async def record_event(
        self, request_id: int, kind: str, actor: str, detail: Mapping[str, Any]
    ) -> None:
        """An audit event that is not a status change (a reminder sent, for example)."""
        async with self._transaction() as db:
            await self._insert_event(db, request_id, kind, None, None, actor, dict(detail), _now())

    async def add_approval_card(
        self, request_id: int, approver_id: str, channel: str, ts: str
    ) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO approval_cards (request_id, approver_id, channel, ts) "
                "VALUES (?, ?, ?, ?)",
                (request_id, approver_id, channel, ts),
            )

    async def approval_cards(self, request_id: int) -> list[ApprovalCard]:
        rows = await self._fetch(
            "SELECT approver_id, channel, ts FROM approval_cards WHERE request_id = ? "
            "ORDER BY approver_id",
            (request_id,),
        )
        return [ApprovalCard(approver_id=r[0], channel=r[1], ts=r[2]) for r in rows]

    async def events(self, request_id: int) -> list[Event]:
        rows = await self._fetch(
            "SELECT * FROM events WHERE request_id = ? ORDER BY id", (request_id,)
        )
        return [
            Event(
                request_id=r["request_id"],
                kind=r["kind"],
                from_status=r["from_status"],
                to_status=r["to_status"],
                actor=r["actor"],
                detail=json.loads(r["detail"]),
                at=datetime.fromisoformat(r["at"]),
            )
            for r in rows
        ]

    @staticmethod
    async def _insert_event(
        db: aiosqlite.Connection,
        request_id: int,
        kind: str,
        from_status: Status | None,
        to_status: Status | None,
        actor: str,
        detail: dict[str, Any],
        at: str,
    ) -> None:
        await db.execute(
            "INSERT INTO events (request_id, kind, from_status, to_status, actor, detail, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (request_id, kind, from_status, to_status, actor, json.dumps(detail), at),
        )
