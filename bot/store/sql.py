"""What every part of the store writes its SQL with: timestamps and reading rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiosqlite

from bot import clock


def timestamp(when: datetime) -> str:
    # One fixed format (UTC, microseconds) so timestamps compare correctly as text in SQL.
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def now_timestamp(plus_seconds: float = 0.0) -> str:
    """Now (by :mod:`bot.clock`), or ``plus_seconds`` from now, as :func:`timestamp` writes it."""
    return timestamp(clock.now() + timedelta(seconds=plus_seconds))


def optional_datetime(value: str | None) -> datetime | None:
    """A nullable timestamp column, read back."""
    return datetime.fromisoformat(value) if value else None


async def read_rows(
    db: aiosqlite.Connection, sql: str, parameters: tuple[object, ...] = ()
) -> list[aiosqlite.Row]:
    """Run a statement and read all its rows in one step on aiosqlite's thread.

    Never a cursor held across awaits: a caller cancelled between reading rows would leave the
    statement unfinished, and an unfinished write (``UPDATE ... RETURNING``) makes every later
    COMMIT on the shared connection fail with "SQL statements in progress".
    """
    return list(await db.execute_fetchall(sql, parameters))
