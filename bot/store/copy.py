"""Copying an installation's database into another (``rewardbot copy-db``): SQLite to
PostgreSQL, PostgreSQL to SQLite, or one file to another.

What a copy guarantees:

- Every row of every table of the store, its ids kept, so events, jobs, approval cards and
  address changes still point at their request. The tables are the ones the two databases
  have (reflected, the schema's bookkeeping left out), so a table a later revision adds is
  copied too; if their tables or columns differ, nothing is copied.
- All or nothing: the target is written in one transaction, its schema created in it; the
  source is read in one transaction, so the copy is the state of one moment even while a bot
  writes the source (what it writes after that moment is not copied: stop it first).
- New rows of the target get ids after the copied ones: PostgreSQL's id sequences are moved
  past them; SQLite's AUTOINCREMENT counts the inserted ids itself.
- Refused, with nothing written: a source not at this rewardbot's schema, a target with a row
  in any table, a target that is the source.

Rows move a batch at a time, so a long history never sits in memory at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

from sqlalchemy import MetaData, Table, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.store.database import DATABASE_ERRORS, DatabaseUrl, create_engine, database_problem
from bot.store.schema import require_current_schema, upgrade_schema

# Rows read from the source, and inserted into the target, at a time.
BATCH_ROWS = 1000
# Which schema a database is at (Alembic's table, and the one from before Alembic): each
# database keeps its own, written by its own upgrade.
SCHEMA_BOOKKEEPING = frozenset({"alembic_version", "schema_version"})

# A table of the source and the same table of the target.
_TablePair = tuple[Table, Table]


class CopyRefused(Exception):
    """The copy did not happen and nothing was written; the message is one line, fit to show
    an admin, without a password."""


@dataclass(frozen=True)
class CopiedTable:
    name: str
    rows: int


async def copy_database(
    source: DatabaseUrl, target: DatabaseUrl, *, batch_rows: int = BATCH_ROWS
) -> list[CopiedTable]:
    """Copy every row of ``source`` into ``target`` (see the module's docstring); how many rows
    of each table, in the order the tables were copied. Raises :class:`CopyRefused`."""
    _refuse_missing_file(source)
    _refuse_same(source, target)
    source_engine = create_engine(source, read_only=True)
    target_engine = create_engine(target)
    try:
        with _failing(f"Copying into {target} failed, nothing was written"):
            async with (
                _snapshot(source_engine, source) as (reading, source_tables),
                _empty_target(target_engine, target) as (writing, target_tables),
            ):
                tables = _same_tables(source_tables, target_tables, source, target)
                copied = [await _copy_table(reading, writing, pair, batch_rows) for pair in tables]
                await _continue_ids(writing, [ours for _, ours in tables])
    finally:
        await source_engine.dispose()
        await target_engine.dispose()
    return copied


@contextmanager
def _failing(doing: str) -> Iterator[None]:
    """A database's error inside the block, as one line saying what failed; so is a schema
    this rewardbot cannot work with (``RuntimeError`` from :mod:`bot.store.schema`)."""
    try:
        yield
    except DATABASE_ERRORS as exc:
        raise CopyRefused(f"{doing}: {database_problem(exc)}.") from None
    except RuntimeError as exc:
        raise CopyRefused(f"{doing}: {exc}.") from None


def _refuse_missing_file(source: DatabaseUrl) -> None:
    path = source.sqlite_path
    if path is not None and not path.is_file():
        raise CopyRefused(f"No database at {source} to copy from.")


def _refuse_same(source: DatabaseUrl, target: DatabaseUrl) -> None:
    if source.sqlite_path is not None and target.sqlite_path is not None:
        # The source exists (checked first); the same file under another name is the same.
        same = target.sqlite_path.exists() and source.sqlite_path.samefile(target.sqlite_path)
    else:
        same = _server_database(source) == _server_database(target)
    if same:
        raise CopyRefused(f"{source} is both the source and the target: copy into another one.")


def _server_database(database: DatabaseUrl) -> tuple[str | None, int | None, str | None]:
    if not database.is_postgres:
        return None, None, None
    url = database.url
    return url.host, url.port or 5432, url.database


@asynccontextmanager
async def _snapshot(
    engine: AsyncEngine, source: DatabaseUrl
) -> AsyncIterator[tuple[AsyncConnection, MetaData]]:
    """One read-only transaction on the source, at this rewardbot's schema, and its tables:
    every table as it was at one moment (SQLite: one read transaction; PostgreSQL: REPEATABLE
    READ)."""
    with _failing(f"Cannot read {source}"):
        connection = await engine.connect()
    try:
        with _failing(f"Cannot read {source}"):
            if source.is_postgres:
                await connection.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                )
            await connection.begin()
        with _failing(f"Cannot copy from {source}"):
            await require_current_schema(connection)
            tables = await _store_tables(connection)
        yield connection, tables
    finally:
        await connection.close()  # a read only: nothing to commit


@asynccontextmanager
async def _empty_target(
    engine: AsyncEngine, target: DatabaseUrl
) -> AsyncIterator[tuple[AsyncConnection, MetaData]]:
    """The one write transaction on the target, refused unless it has no row, with this
    rewardbot's schema created in it, and the target's tables; committed if the block ends
    well."""
    with _failing(f"Cannot write {target}"):
        connection = await engine.connect()
    try:
        with _failing(f"Cannot write {target}"):
            await connection.begin()
            await _refuse_rows(connection, target)
        with _failing(f"Cannot copy into {target}"):
            await upgrade_schema(connection)
            tables = await _store_tables(connection)
        yield connection, tables
        await connection.commit()
    finally:
        await connection.close()  # not committed: rolled back


async def _store_tables(connection: AsyncConnection) -> MetaData:
    """The database's tables as they are, but the schema's bookkeeping."""
    metadata = MetaData()
    await connection.run_sync(
        lambda sync: metadata.reflect(sync, only=lambda name, _: name not in SCHEMA_BOOKKEEPING)
    )
    return metadata


async def _refuse_rows(writing: AsyncConnection, target: DatabaseUrl) -> None:
    # Before the schema is upgraded: any table with rows, whatever its schema version.
    tables = (await _store_tables(writing)).sorted_tables
    full = [
        t.name for t in tables if await writing.scalar(select(literal(1)).select_from(t).limit(1))
    ]
    if full:
        raise CopyRefused(
            f"{target} is not empty (rows in {', '.join(full)}): copy into an empty database."
        )


def _same_tables(
    source_tables: MetaData, target_tables: MetaData, source: DatabaseUrl, target: DatabaseUrl
) -> list[_TablePair]:
    """Each table of the source with the target's, in an order where every table comes after
    those it refers to; refused unless both have the same tables with the same columns."""
    theirs, ours = source_tables.tables, target_tables.tables
    differences = [f"table {name}" for name in sorted(theirs.keys() ^ ours.keys())]
    for name in sorted(theirs.keys() & ours.keys()):
        columns = theirs[name].columns.keys(), ours[name].columns.keys()
        differences += [f"column {name}.{c}" for c in sorted(set(columns[0]) ^ set(columns[1]))]
    if differences:
        raise CopyRefused(
            f"{source} and {target} differ, so nothing was copied: only one of them has "
            + ", ".join(differences)
            + "."
        )
    return [(theirs[table.name], table) for table in target_tables.sorted_tables]


async def _copy_table(
    reading: AsyncConnection, writing: AsyncConnection, tables: _TablePair, batch_rows: int
) -> CopiedTable:
    source_table, target_table = tables
    # In key order: the requests a request refers to (its batch's and its order's first
    # request, ``batch_id`` and ``order_owner``) come before it, so they exist when it arrives.
    order = list(source_table.primary_key.columns) or list(source_table.columns)
    rows = await reading.stream(select(source_table).order_by(*order))
    copied = 0
    async for batch in rows.partitions(batch_rows):
        await writing.execute(insert(target_table), [row._asdict() for row in batch])
        copied += len(batch)
    return CopiedTable(target_table.name, copied)


async def _continue_ids(writing: AsyncConnection, tables: Sequence[Table]) -> None:
    """Move each PostgreSQL id sequence past the ids copied, which did not draw from it (on
    SQLite, AUTOINCREMENT already counts every inserted id)."""
    if writing.dialect.name != "postgresql":
        return
    for table in tables:
        for column in table.primary_key.columns:
            sequence = await writing.scalar(
                select(func.pg_get_serial_sequence(table.name, column.name))
            )
            if sequence is not None:
                highest = func.max(column)
                # An empty table's sequence starts again at 1.
                await writing.execute(
                    select(func.setval(sequence, func.coalesce(highest, 1), highest.is_not(None)))
                )
