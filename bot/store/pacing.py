"""Turns at one pace for every process: the calls all of a fleet's processes make to one
provider, or post in one Slack channel, spaced as if one process made them.

A key's row holds when its next turn is due. Taking a turn reads and moves that time in one
write transaction (on PostgreSQL under the row's lock, so processes queue for it), and the
caller then waits outside any transaction for the time it was given.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.store.base import StoreBase
from bot.store.sql import Connection, timestamp


class Pacing(StoreBase):
    async def reserve_turn(self, key: str, interval_seconds: float) -> float:
        """Take the next turn of ``key``: the seconds to wait for it (0: at once). Turns are
        ``interval_seconds`` apart whichever processes take them, and none two at once."""
        async with self._transaction() as db:
            now = await _shared_now(db)
            turn = max(now, await _locked_next_at(db, key, now))
            await _set_next_at(db, key, turn + timedelta(seconds=interval_seconds))
        return (turn - now).total_seconds()

    async def hold_off(self, key: str, seconds: float) -> None:
        """No turn of ``key`` that is taken from now on starts sooner than ``seconds`` from now
        (a provider's ``Retry-After``, for every process, not only the one that was told);
        turns already taken keep their time."""
        async with self._transaction() as db:
            now = await _shared_now(db)
            next_at = await _locked_next_at(db, key, now)
            await _set_next_at(db, key, max(next_at, now + timedelta(seconds=seconds)))


async def _shared_now(db: Connection) -> datetime:
    """The time turns are measured by. On PostgreSQL, the server's clock: the one clock every
    process of a fleet reads alike, whatever their own machines' clocks say. On SQLite, this
    machine's clock, which every process on the file shares. Never :mod:`bot.clock`'s: a turn
    is a real wait, and one process whose clock was stepped would hold every other one up."""
    if db.is_postgres:
        [row] = await db.rows("SELECT clock_timestamp() AS now")
        now: datetime = row["now"]
        return now
    return datetime.now(UTC)


async def _locked_next_at(db: Connection, key: str, now: datetime) -> datetime:
    """When ``key``'s next turn is due (a new key's row is made, due ``now``), its row locked
    until the transaction ends: on PostgreSQL, a second process waits here for the first one's
    commit and then reads what it wrote; on SQLite, the write transaction already excludes it."""
    await db.run(
        "INSERT INTO pacing (key, next_at) VALUES (:key, :now) ON CONFLICT (key) DO NOTHING",
        key=key,
        now=timestamp(now),
    )
    lock = "FOR UPDATE" if db.is_postgres else ""
    [row] = await db.rows(
        f"SELECT next_at FROM pacing WHERE key = :key {lock}",  # noqa: S608
        key=key,
    )
    return datetime.fromisoformat(row["next_at"])


async def _set_next_at(db: Connection, key: str, next_at: datetime) -> None:
    await db.run(
        "UPDATE pacing SET next_at = :next_at WHERE key = :key",
        key=key,
        next_at=timestamp(next_at),
    )
