"""Durable state in SQLite: reward requests, the Slack messages that show them, and the audit trail.

Status changes happen only in :meth:`Store.transition`, a guarded ``UPDATE ... WHERE id=? AND
status=?`` that reports whether it won; the audit event is written in the same transaction.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiosqlite
from pydantic import BaseModel, ConfigDict

from bot.domain import TRANSITIONS, Money, NewRewardRequest, RewardRequest, Status
from bot.errors import RequestNotFound

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
)

# Columns a transition may set alongside the status.
_TRANSITION_COLUMNS = frozenset(
    {
        "idempotency_key",
        "provider_order_id",
        "decided_by",
        "decision_reason",
        "failure_reason",
        "charged_amount",
        "charged_currency",
        "recipient_name",
        "recipient_email",
    }
)
SYSTEM_ACTOR = "rewardbot"


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


class ApprovalCard(BaseModel):
    """Where an approver's Approve / Reject card was posted."""

    model_config = ConfigDict(frozen=True)

    approver_id: str
    channel: str
    ts: str


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _row_to_request(row: aiosqlite.Row) -> RewardRequest:
    charged = None
    if row["charged_amount"] is not None:
        charged = Money(amount=Decimal(row["charged_amount"]), currency=row["charged_currency"])
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
        charged=charged,
        decided_by=row["decided_by"],
        decision_reason=row["decision_reason"],
        failure_reason=row["failure_reason"],
        summary_channel=row["summary_channel"],
        summary_ts=row["summary_ts"],
        recipient_name=row["recipient_name"],
        recipient_email=row["recipient_email"],
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


class Store:
    """All reads and writes of rewardbot's database."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection
        # One connection is shared by every coroutine: a transaction must not interleave with
        # another coroutine's statements, and a read must not see a half-done transaction.
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str) -> Store:
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
        await self._db.close()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                yield self._db
            except BaseException:
                if self._db.in_transaction:
                    await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def _fetch(self, sql: str, parameters: tuple[object, ...]) -> list[aiosqlite.Row]:
        async with self._lock, self._db.execute(sql, parameters) as cursor:
            return list(await cursor.fetchall())

    async def _migrate(self) -> None:
        async with self._transaction() as db:
            await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            async with db.execute("SELECT version FROM schema_version") as cursor:
                row = await cursor.fetchone()
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
        self, new: NewRewardRequest, submission_key: str
    ) -> tuple[RewardRequest, bool]:
        """Store a new request; returns it and whether it is new. A second submission with
        the same ``submission_key`` returns the first one's request instead."""
        rows = await self._fetch(
            "SELECT id FROM reward_requests WHERE submission_key = ?", (submission_key,)
        )
        if rows:
            return await self.get(rows[0]["id"]), False
        now = _now()
        async with self._transaction() as db:
            cursor = await db.execute(
                """INSERT INTO reward_requests (requester_id, recipient_id, origin_channel_id,
                       amount, currency, provider, product_id, product_name, message, status,
                       submission_key, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
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
                    now,
                    now,
                ),
            )
            request_id = cursor.lastrowid
            assert request_id is not None
            await self._insert_event(
                db, request_id, "created", None, Status.PENDING_APPROVAL, new.requester_id, {}, now
            )
        return await self.get(request_id), True

    async def get(self, request_id: int) -> RewardRequest:
        rows = await self._fetch("SELECT * FROM reward_requests WHERE id = ?", (request_id,))
        if not rows:
            raise RequestNotFound(f"There is no reward request #{request_id}.")
        return _row_to_request(rows[0])

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
        **columns: str | None,
    ) -> bool:
        """Move the request from ``from_`` to ``to`` if it is still in ``from_``.

        Returns whether this call won. ``columns`` are set in the same statement, so whoever
        wins the race also owns what is written with it (the decider, the idempotency key...).
        """
        if to not in TRANSITIONS[from_]:
            raise ValueError(f"{from_} → {to} is not an allowed transition")
        unknown = set(columns) - _TRANSITION_COLUMNS
        if unknown:
            raise ValueError(f"transition cannot set {sorted(unknown)}")
        now = _now()
        assignments = "".join(f", {name} = ?" for name in columns)
        async with self._transaction() as db:
            cursor = await db.execute(
                f"UPDATE reward_requests SET status = ?, updated_at = ?{assignments} "  # noqa: S608
                "WHERE id = ? AND status = ?",
                (to, now, *columns.values(), request_id, from_),
            )
            won = cursor.rowcount == 1
            if won:
                await self._insert_event(
                    db, request_id, "transition", from_, to, actor, dict(detail or {}), now
                )
        return won

    async def record_event(
        self, request_id: int, kind: str, actor: str, detail: Mapping[str, Any]
    ) -> None:
        """Audit something that is not a status change (an order id learnt, a DM sent...)."""
        async with self._transaction() as db:
            await self._insert_event(db, request_id, kind, None, None, actor, dict(detail), _now())

    async def set_provider_order(self, request_id: int, provider_order_id: str) -> None:
        now = _now()
        async with self._transaction() as db:
            await db.execute(
                "UPDATE reward_requests SET provider_order_id = ?, updated_at = ? WHERE id = ?",
                (provider_order_id, now, request_id),
            )
            await self._insert_event(
                db,
                request_id,
                "order_placed",
                None,
                None,
                SYSTEM_ACTOR,
                {"provider_order_id": provider_order_id},
                now,
            )

    async def set_summary_message(self, request_id: int, channel: str, ts: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "UPDATE reward_requests SET summary_channel = ?, summary_ts = ? WHERE id = ?",
                (channel, ts, request_id),
            )

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
