"""What every part of the store shares: the database, its transactions, opening and closing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Self

from bot.store.backends import Backend, open_backend
from bot.store.database import DatabaseUrl, create_engine
from bot.store.schema import require_current_schema, upgrade_schema
from bot.store.sql import Connection, Row


class StoreBase:
    """Owns the backend (:mod:`bot.store.backends`): opening (and upgrading) the database,
    closing it, and transactions."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self.database = backend.database
        # Called after a commit that queued jobs, so the runner starts them without polling.
        self.on_jobs_queued: Callable[[], None] | None = None

    def _jobs_queued(self) -> None:
        if self.on_jobs_queued is not None:
            self.on_jobs_queued()

    @classmethod
    async def open(cls, database: DatabaseUrl | str | Path) -> Self:
        """Open the bot's database, creating or upgrading its schema first (under a lock, so
        processes starting together upgrade it once)."""
        url = database if isinstance(database, DatabaseUrl) else DatabaseUrl.parse(database)
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                await upgrade_schema(connection)
        finally:
            await engine.dispose()
        return cls(await open_backend(url))

    @classmethod
    async def open_read_only(cls, database: DatabaseUrl | str | Path) -> Self:
        """Open an existing database for reading while the bot may be writing it (reports):
        on SQLite no write lock is ever taken, so a busy bot never blocks the reader, nor it
        the bot. Raises :class:`RuntimeError` unless its schema is this rewardbot's."""
        url = database if isinstance(database, DatabaseUrl) else DatabaseUrl.parse(database)
        engine = create_engine(url, read_only=True)
        try:
            async with engine.connect() as connection:
                await require_current_schema(connection)
        finally:
            await engine.dispose()
        return cls(await open_backend(url, read_only=True))

    async def answers(self, within: float) -> bool:
        """Whether the database answers within ``within`` seconds (readiness)."""
        return await self._backend.answers(within)

    async def close(self) -> None:
        await self._backend.close()

    def _transaction(self) -> AbstractAsyncContextManager[Connection]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        return self._backend.transaction()

    async def _fetch(self, sql: str, **parameters: object) -> Sequence[Row]:
        async with self._backend.reading() as db:
            return await db.rows(sql, **parameters)
