"""Running the store's statements: on one SQLite connection, or on a pool of PostgreSQL ones.

Both run the same SQL text (:class:`~bot.store.sql.Connection`). SQLite is driven through
aiosqlite directly rather than through SQLAlchemy: its adapter makes five hops to the
driver's thread per statement where aiosqlite makes one (a read took 0.8 ms instead of
0.08 ms), and the SQLite store serves every request of its process on that one thread.
SQLAlchemy still creates and upgrades both schemas (:mod:`bot.store.schema`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, cast
from urllib.parse import quote

import aiosqlite
from sqlalchemy import CursorResult, TextClause, bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.store.database import DATABASE_ERRORS, SQLITE_BUSY_MS, DatabaseUrl, create_engine
from bot.store.sql import Connection, Row, is_expanded, uninterrupted

_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")


class Backend(Protocol):
    """Where the store's statements run."""

    database: DatabaseUrl

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Connection]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        ...

    def reading(self) -> contextlib.AbstractAsyncContextManager[Connection]:
        """A connection for one read, outside any transaction."""
        ...

    async def answers(self, within: float) -> bool:
        """Whether the database answers a query within ``within`` seconds, on a connection
        that proves it (not one that may keep working on a file that is gone)."""
        ...

    async def close(self) -> None: ...


class _SqliteConnection(Connection):
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def rows(self, sql: str, **parameters: object) -> Sequence[Row]:
        sql, values = _expand(sql, parameters)
        return [dict(row) for row in await self._db.execute_fetchall(sql, values)]

    async def run(self, sql: str, **parameters: object) -> int:
        sql, values = _expand(sql, parameters)
        cursor = await self._db.execute(sql, values)
        return cursor.rowcount


def _expand(sql: str, parameters: dict[str, object]) -> tuple[str, dict[str, object]]:
    """``IN :name`` with a collection becomes ``IN (:name_0, :name_1, ...)``."""
    if not any(is_expanded(value) for value in parameters.values()):
        return sql, parameters
    values: dict[str, object] = {}

    def one_per_item(match: re.Match[str]) -> str:
        name = match.group(1)
        value = parameters.get(name)
        if not is_expanded(value):
            values[name] = value
            return match.group(0)
        items = list(value)  # type: ignore[call-overload]
        values.update({f"{name}_{number}": item for number, item in enumerate(items)})
        return "(" + ", ".join(f":{name}_{number}" for number in range(len(items))) + ")"

    return _PARAMETER.sub(one_per_item, sql), values


class SqliteBackend:
    """One connection to the file, shared by every coroutine of the process under a lock: a
    transaction must not interleave with another coroutine's statements, nor a read see a
    half-done transaction. Each write transaction starts with ``BEGIN IMMEDIATE``, so it holds
    the file's write lock from its first statement: a read-then-write inside it can never be
    overtaken by another process."""

    def __init__(self, database: DatabaseUrl, db: aiosqlite.Connection) -> None:
        self.database = database
        self._db = db
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, database: DatabaseUrl, *, read_only: bool = False) -> SqliteBackend:
        path = database.sqlite_path
        assert path is not None
        if read_only:
            # No write lock is ever taken: a busy bot never blocks a report, nor it the bot.
            uri = f"file:{quote(str(path.resolve()))}?mode=ro"
            db = await aiosqlite.connect(uri, isolation_level=None, uri=True)
        else:
            db = await aiosqlite.connect(str(path), isolation_level=None)
        db.row_factory = aiosqlite.Row
        try:
            await db.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
            if not read_only:
                await db.execute("PRAGMA journal_mode=WAL")
                await db.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            await db.close()  # its thread would keep the process alive
            raise
        return cls(database, db)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                yield _SqliteConnection(self._db)
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

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Connection]:
        async with self._lock:
            yield _SqliteConnection(self._db)

    async def answers(self, within: float) -> bool:
        # A fresh read-write connection: the open one would keep working on a file that was
        # deleted or moved.
        path = self.database.sqlite_path
        assert path is not None
        uri = f"file:{quote(str(path.resolve()))}?mode=rw"
        try:
            async with asyncio.timeout(within):
                async with aiosqlite.connect(uri, uri=True, timeout=within) as db:
                    await db.execute_fetchall("SELECT COUNT(*) FROM sqlite_master")
        except (TimeoutError, OSError, sqlite3.Error):
            return False
        return True

    async def close(self) -> None:
        async with self._lock:  # never in the middle of someone's transaction
            await self._db.close()


class _PostgresConnection(Connection):
    is_postgres = True

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def rows(self, sql: str, **parameters: object) -> Sequence[Row]:
        result = await self._execute(sql, parameters)
        return cast(Sequence[Row], list(result.mappings()))

    async def run(self, sql: str, **parameters: object) -> int:
        result = await self._execute(sql, parameters)
        return result.rowcount

    async def _execute(self, sql: str, parameters: dict[str, object]) -> CursorResult[Any]:
        statement = _statement(sql, parameters)
        return await uninterrupted(self.connection.execute(statement, parameters))


def _statement(sql: str, parameters: dict[str, object]) -> TextClause:
    statement = text(sql)
    expanded = [name for name, value in parameters.items() if is_expanded(value)]
    if expanded:
        statement = statement.bindparams(*(bindparam(name, expanding=True) for name in expanded))
    return statement


class PostgresBackend:
    """A pool of connections (SQLAlchemy's, over asyncpg), READ COMMITTED: transactions run
    side by side, in this process and in others. They meet on row locks (guarded ``UPDATE``,
    ``SELECT ... FOR UPDATE``), advisory locks (:meth:`Connection.lock`) and ``SKIP LOCKED``
    claims."""

    def __init__(self, database: DatabaseUrl, engine: AsyncEngine) -> None:
        self.database = database
        self.engine = engine
        # A read is one statement: no transaction around it.
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT")

    @classmethod
    def open(cls, database: DatabaseUrl) -> PostgresBackend:
        return cls(database, create_engine(database))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with pooled_connection(self.engine) as connection:
            await uninterrupted(connection.begin())
            try:
                yield _PostgresConnection(connection)
                await uninterrupted(connection.commit())
            except BaseException:
                await uninterrupted(connection.rollback())
                raise

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Connection]:
        async with pooled_connection(self._reader) as connection:
            yield _PostgresConnection(connection)

    async def answers(self, within: float) -> bool:
        # From the pool, which replaces a connection the server dropped (pre-ping).
        try:
            async with asyncio.timeout(within), self.reading() as db:
                await db.rows("SELECT 1 AS answer")
        except DATABASE_ERRORS:  # TimeoutError included (an OSError)
            return False
        return True

    async def close(self) -> None:
        await self.engine.dispose()


@asynccontextmanager
async def pooled_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection from the pool, back to it when the block ends, neither interrupted by a
    cancellation (see :func:`~bot.store.sql.uninterrupted`)."""
    connection = await uninterrupted(engine.connect(), undo=AsyncConnection.close)
    try:
        yield connection
    finally:
        await uninterrupted(connection.close())


async def open_backend(database: DatabaseUrl, *, read_only: bool = False) -> Backend:
    if database.is_postgres:
        return PostgresBackend.open(database)
    return await SqliteBackend.open(database, read_only=read_only)
