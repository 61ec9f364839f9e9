"""The connection every part of the store shares, and its transactions."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Self
from urllib.parse import quote

import aiosqlite

from bot.store.schema import MIGRATIONS, migrate
from bot.store.sql import read_rows


class StoreBase:
    """Owns the connection: opening (and upgrading) the database, closing it, and the lock that
    keeps each transaction whole."""

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
    async def open(cls, path: Path | str) -> Self:
        """Open (creating or upgrading) the bot's database."""
        connection = await aiosqlite.connect(str(path), isolation_level=None)
        connection.row_factory = aiosqlite.Row
        store = cls(connection)
        try:
            # A file that is not a database fails here: its connection (a thread that keeps
            # the process alive) is closed below all the same.
            await connection.execute("PRAGMA journal_mode=WAL")
            await connection.execute("PRAGMA foreign_keys=ON")
            await connection.execute("PRAGMA busy_timeout=5000")
            async with store._transaction() as db:
                await migrate(db)
        except BaseException:
            await connection.close()
            raise
        return store

    @classmethod
    async def open_read_only(cls, absolute_path: str) -> Self:
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
        if version != len(MIGRATIONS):
            await connection.close()
            raise RuntimeError(
                f"the database is at schema version {version} and this rewardbot reads "
                f"version {len(MIGRATIONS)}: start this rewardbot once to upgrade it"
            )
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
            return await read_rows(self._db, sql, parameters)
