"""Which database rewardbot keeps its state in (``REWARDBOT_DATABASE``), and its engine.

A SQLite file (the embedded default) or a PostgreSQL database (production, several processes).
One set of queries serves both (:mod:`bot.store.backends` runs them); what differs is how a
transaction keeps others out: SQLite has one writer at a time for the whole file, PostgreSQL
meets writers on row and advisory locks.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no type information shipped
from sqlalchemy import URL, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

# The connections one PostgreSQL-backed process may hold: the job runner's concurrent jobs,
# Slack's requests and the scrapes share them; more would only queue inside the server.
_POSTGRES_POOL_SIZE = 10
# How long a statement waits for SQLite's write lock held by another process.
SQLITE_BUSY_MS = 5000
# How long opening a PostgreSQL connection may take before the attempt fails (then retried
# by whoever asked: a job, Slack's next request).
_POSTGRES_CONNECT_TIMEOUT = 5.0
# A statement that gets no answer (a network that drops packets without a word) fails after
# this long, as if the server had dropped it, instead of holding its caller for ever. Long
# enough for a migration's index on a big table.
_POSTGRES_STATEMENT_TIMEOUT = 60.0
# What the server itself does about a client that went silent. A process cut off in the
# middle of a transaction would otherwise keep its locks (a pacing turn's row, a job's, a
# budget's advisory lock, which every other process then waits for) until the server's TCP
# keepalive noticed, two hours later by default.
_POSTGRES_SESSION = {
    "idle_in_transaction_session_timeout": "60s",
    "tcp_keepalives_idle": "30",
    "tcp_keepalives_interval": "10",
    "tcp_keepalives_count": "3",
}


@dataclass(frozen=True)
class DatabaseUrl:
    """``REWARDBOT_DATABASE``, understood: a SQLite path, ``sqlite:///path`` or
    ``postgresql://user@host:port/name``."""

    url: URL

    @classmethod
    def parse(cls, value: str | Path) -> DatabaseUrl:
        """Raises :class:`ValueError` naming what is wrong."""
        text = str(value).strip()
        if not text:
            raise ValueError("is empty: give a SQLite file path or a postgresql:// URL")
        if "://" not in text:
            return cls(URL.create("sqlite+aiosqlite", database=text))
        try:
            url = make_url(text)
        except ArgumentError:
            raise ValueError("is not a database URL") from None
        backend = url.get_backend_name()
        if backend == "sqlite":
            if not url.database:
                raise ValueError("names no SQLite file (sqlite:///path/to/rewardbot.db)")
            return cls(url.set(drivername="sqlite+aiosqlite"))
        if backend in ("postgresql", "postgres"):
            if not url.database:
                raise ValueError("names no database (postgresql://user@host:5432/name)")
            if url.host and "@" in url.host:
                raise ValueError("has an @ that is not escaped: write an @ in the password as %40")
            if "password" in url.query:
                # Shown wherever the URL is (a message, a log line): only the URL's own
                # password part is hidden.
                raise ValueError(
                    "carries a password in its query: put it in the URL "
                    "(postgresql://user:password@host/name), or in PGPASSWORD or ~/.pgpass"
                )
            return cls(url.set(drivername="postgresql+asyncpg"))
        raise ValueError(f"uses {backend!r}: rewardbot keeps its state in SQLite or PostgreSQL")

    @property
    def is_postgres(self) -> bool:
        return self.url.get_backend_name() == "postgresql"

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or ``None`` on PostgreSQL."""
        if self.is_postgres:
            return None
        assert self.url.database is not None
        return Path(self.url.database)

    def __str__(self) -> str:
        """For messages and logs: never the password."""
        if self.sqlite_path is not None:
            return str(self.sqlite_path)
        return self.url.set(drivername="postgresql").render_as_string(hide_password=True)


def create_engine(database: DatabaseUrl, *, read_only: bool = False) -> AsyncEngine:
    """SQLAlchemy's engine for ``database``: the PostgreSQL store runs on it; on SQLite it
    creates and upgrades the schema (:mod:`bot.store.schema`) and copies databases.
    ``read_only`` (SQLite): it never takes the write lock."""
    if database.is_postgres:
        return create_async_engine(
            database.url,
            pool_size=_POSTGRES_POOL_SIZE,
            max_overflow=0,
            # A connection the server dropped (a restart, a failover, an admin terminating
            # backends) is noticed when it is taken from the pool and replaced, not used.
            pool_pre_ping=True,
            # A checkout waits this long for a free connection, then fails like a refusal.
            pool_timeout=2 * _POSTGRES_CONNECT_TIMEOUT,
            connect_args={
                "timeout": _POSTGRES_CONNECT_TIMEOUT,
                "command_timeout": _POSTGRES_STATEMENT_TIMEOUT,
                "server_settings": _POSTGRES_SESSION,
            },
        )
    url = database.url
    if read_only:
        path = database.sqlite_path
        assert path is not None
        url = url.set(database=f"file:{path.resolve()}?mode=ro", query={"uri": "true"})
    engine = create_async_engine(url, poolclass=NullPool)
    _begin_sqlite_transactions(engine, "BEGIN" if read_only else "BEGIN IMMEDIATE")
    return engine


def _begin_sqlite_transactions(engine: AsyncEngine, begin: str) -> None:
    """SQLite's driver begins transactions lazily (deferred, at the first write): turn that off
    and begin each one with ``begin``, as SQLAlchemy's SQLite dialect documents for
    serializable transactions. ``BEGIN IMMEDIATE`` takes the write lock at once, so an upgrade
    of the schema by one process keeps every other out until it is done."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)


# What opening or using a database raises when the database (not rewardbot) is the problem:
# the server refuses or is unreachable, the file is not a database, the schema is foreign.
# asyncpg's own errors are here because SQLAlchemy does not wrap what asyncpg raises while
# opening a connection (sqlalchemy/sqlalchemy#11956): a server that refuses the database
# ("not currently accepting connections", "starting up", too many clients) raises them as
# they are, from any statement that needed a new connection.
DATABASE_ERRORS = (
    SQLAlchemyError,
    sqlite3.Error,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


def database_problem(exc: BaseException) -> str:
    """One line saying what went wrong, from the driver's own words: never the statement or its
    parameters (SQLAlchemy's message quotes both) nor a link to its docs."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
