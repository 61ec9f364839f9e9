"""What every part of the store writes its SQL with: a transaction's connection, timestamps.

Statements are plain SQL with named parameters (``:name``), written once for SQLite and
PostgreSQL (:mod:`bot.store.backends` runs them); the few places where the two differ ask
:attr:`Connection.is_postgres`.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from bot import clock

T = TypeVar("T")

# A row read back: its columns by name.
Row = Mapping[str, Any]


class Connection(ABC):
    """One connection, inside a write transaction or for a single read: statements with named
    parameters (``:name``; a tuple, list or set is expanded for ``IN :name``)."""

    is_postgres = False

    @abstractmethod
    async def rows(self, sql: str, **parameters: object) -> Sequence[Row]:
        """Run a statement and read all its rows.

        Read in one step, never through a cursor held across awaits: a caller cancelled
        between rows would leave the statement unfinished inside the transaction.
        """

    @abstractmethod
    async def run(self, sql: str, **parameters: object) -> int:
        """Run a statement that returns no rows; how many rows it changed."""

    async def lock(self, key: str) -> None:
        """Until this transaction ends, be the only one holding ``key`` (for a read-then-write
        that no row lock covers, such as the sum of a budget). On SQLite the write
        transaction already excludes every other writer."""
        if self.is_postgres:
            await self.run("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))", key=key)

    async def lock_request(self, request_id: int) -> None:
        """Until this transaction ends, be the only writer of this request's row, so what it
        read of the row stays true (on SQLite the write transaction already is). ``NO KEY``:
        rows that refer to the request (its events, its jobs) may still be inserted meanwhile;
        only writers of the row itself wait."""
        if self.is_postgres:
            await self.run(
                "SELECT id FROM reward_requests WHERE id = :id FOR NO KEY UPDATE", id=request_id
            )


def is_expanded(value: object) -> bool:
    """Whether a parameter's value is a collection, bound as one parameter per item."""
    return isinstance(value, tuple | list | set | frozenset)


async def uninterrupted(
    call: Awaitable[T], undo: Callable[[T], Awaitable[object]] | None = None
) -> T:
    """Await a database call that, once made, runs to its end even if the caller is cancelled
    meanwhile (the cancellation then goes on once it ended, after ``undo`` of what it gave).
    SQLAlchemy discards a connection interrupted mid-call without ending its transaction:
    SQLite's write lock would outlive it, and every later transaction would find the
    database locked."""
    task = asyncio.ensure_future(call)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        # Cancelled again while waiting (a heartbeat and a stop both cancel a run): still
        # wait, or the caller would go on to roll back a connection in use.
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([task])
        if not task.cancelled() and task.exception() is None and undo is not None:
            await uninterrupted(undo(task.result()))
        raise


def timestamp(when: datetime) -> str:
    # One fixed format (UTC, microseconds) so timestamps compare correctly as text in SQL.
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def now_timestamp(plus_seconds: float = 0.0) -> str:
    """Now (by :mod:`bot.clock`), or ``plus_seconds`` from now, as :func:`timestamp` writes it."""
    return timestamp(clock.now() + timedelta(seconds=plus_seconds))


def optional_datetime(value: str | None) -> datetime | None:
    """A nullable timestamp column, read back."""
    return datetime.fromisoformat(value) if value else None
