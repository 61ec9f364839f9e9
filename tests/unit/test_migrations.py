"""The schema's one migration history on SQLite and PostgreSQL, and the adoption of SQLite files
made before Alembic (legacy ``schema_version``)."""

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import ReflectedColumn, ReflectedIndex
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.store.database import DatabaseUrl, create_engine
from bot.store.schema import (
    ADOPTED_LEGACY_VERSION,
    MIGRATIONS,
    MIGRATIONS_DIRECTORY,
    SchemaStatus,
    require_current_schema,
    schema_status,
    upgrade_schema,
)

# Every revision, oldest first.
REVISIONS = ("0001_baseline", "0002_pacing")
HEAD = REVISIONS[-1]
# Tables that describe the schema, not the bot's data.
BOOKKEEPING = {"alembic_version", "schema_version", "sqlite_sequence"}
STARTED = "2026-01-01T09:00:00.000000+00:00"


def bot_engine(database: str | Path, *, read_only: bool = False) -> AsyncEngine:
    """The engine rewardbot itself opens ``database`` with: on SQLite, each transaction takes
    the write lock when it begins and includes DDL, as an upgrade needs."""
    return create_engine(DatabaseUrl.parse(database), read_only=read_only)


@pytest.fixture
async def engine(database: str) -> AsyncIterator[AsyncEngine]:
    engine = bot_engine(database)
    yield engine
    await engine.dispose()


async def upgrade(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await upgrade_schema(connection)


async def upgrade_to(engine: AsyncEngine, revision: str) -> None:
    """Run the history only up to ``revision``, as a rewardbot of that revision would have."""

    def run(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIRECTORY))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def alembic_revisions(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        result = await connection.execute(sa.text("SELECT version_num FROM alembic_version"))
        return list(result.scalars())


# --- the schema, as the database describes it -----------------------------------------------


def _column(column: ReflectedColumn, primary_key: list[str]) -> tuple[str, str, bool, str | None]:
    # SQLite calls a key column nullable unless it says NOT NULL: keys are compared as keys.
    nullable = bool(column["nullable"]) and column["name"] not in primary_key
    # PostgreSQL names the type of a literal default ('{}'::text) and fills an id from a sequence.
    default = column["default"]
    if default is not None:
        default = None if default.startswith("nextval(") else default.split("::")[0]
    return column["name"], str(column["type"]), nullable, default


def _index(index: ReflectedIndex) -> tuple[str | None, tuple[str | None, ...], bool, str | None]:
    options = index.get("dialect_options", {})
    where = options.get("sqlite_where", options.get("postgresql_where"))
    return (
        index["name"],
        tuple(index["column_names"]),
        bool(index["unique"]),
        None if where is None else str(where).strip("()"),
    )


def layout(connection: Connection) -> dict[str, dict[str, Any]]:
    """Every table of the bot's data: its columns in order, keys, references and indexes."""
    inspector = sa.inspect(connection)
    tables = {}
    for table in sorted(set(inspector.get_table_names()) - BOOKKEEPING):
        primary_key = inspector.get_pk_constraint(table)["constrained_columns"]
        tables[table] = {
            "columns": [_column(c, primary_key) for c in inspector.get_columns(table)],
            "primary_key": primary_key,
            "foreign_keys": sorted(
                (tuple(fk["constrained_columns"]), fk["referred_table"], *fk["referred_columns"])
                for fk in inspector.get_foreign_keys(table)
            ),
            "unique": sorted(
                tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
            ),
            # PostgreSQL lists a unique constraint's own index too: it is in "unique".
            "indexes": sorted(
                _index(i) for i in inspector.get_indexes(table) if "duplicates_constraint" not in i
            ),
        }
    return tables


async def layout_of(database: str | Path) -> dict[str, dict[str, Any]]:
    engine = bot_engine(database)
    async with engine.connect() as connection:
        found = await connection.run_sync(layout)
    await engine.dispose()
    return found


# --- SQLite files made before Alembic ---------------------------------------------------------

REQUEST = {
    "id": 7,
    "requester_id": "UREQ",
    "recipient_id": "UREC",
    "origin_channel_id": "CGEN",
    "amount": "25.00",
    "currency": "GBP",
    "provider": "sandbox",
    "product_id": "SBX-BOOKS-GBP",
    "product_name": "Sandbox Books",
    "message": "thanks",
    # Ordered and never answered: legacy version 9 records the order's send.
    "status": "ordering",
    "idempotency_key": "rb-7-1",
    "created_at": STARTED,
    "updated_at": STARTED,
}
# The rows of a legacy file at version 8, table by table, with the columns it has then.
ROWS_AT_8: dict[str, list[dict[str, Any]]] = {
    "reward_requests": [REQUEST | {"team": "design", "batch_id": 7, "order_key": "rb-7-1"}],
    "approval_cards": [{"request_id": 7, "approver_id": "UAPP", "channel": "D1", "ts": "1.2"}],
    "events": [
        {"id": 3, "request_id": 7, "kind": "created", "actor": "UREQ", "at": STARTED},
        {"id": 4, "request_id": 7, "kind": "approved", "actor": "UAPP", "at": STARTED},
    ],
    "jobs": [
        {"id": 5, "kind": "fulfil", "request_id": 7, "run_after": STARTED, "created_at": STARTED}
    ],
}
ROWS_AT_11 = ROWS_AT_8 | {
    "reward_requests": [ROWS_AT_8["reward_requests"][0] | {"delivery_claim": "j5-1"}],
    "jobs": [ROWS_AT_8["jobs"][0] | {"waiting": 1, "waited_from": STARTED}],
    "order_sends": [
        {"order_key": "rb-7-1", "provider": "sandbox", "first_sent_at": STARTED}
        | {"last_sent_at": STARTED, "sends": 1, "unsettled_since": STARTED}
    ],
    "email_changes": [
        {"id": 2, "request_id": 7, "email": "jane@home.example", "requested_by": "UAPP"}
        | {"requested_at": STARTED, "expires_at": "2099-01-01T09:00:00.000000+00:00"}
    ],
}


def legacy_file(path: Path, version: int, rows: dict[str, list[dict[str, Any]]]) -> Path:
    """A SQLite file as the rewardbot of legacy schema ``version`` left it, holding ``rows``."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.executescript(
            "CREATE TABLE schema_version (version INTEGER NOT NULL);"
            f"INSERT INTO schema_version (version) VALUES ({version});"
            + "".join(MIGRATIONS[:version])
        )
        for table, table_rows in rows.items():
            for row in table_rows:
                db.execute(
                    f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                    tuple(row.values()),
                )
    return path


def tables_in(path: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def rows_in(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every row of the bot's data in a SQLite file, table by table."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.row_factory = sqlite3.Row
        return {
            table: [dict(row) for row in db.execute(f"SELECT * FROM {table} ORDER BY rowid")]
            for table in sorted(tables_in(path) - BOOKKEEPING)
        }


def legacy_version(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        [(version,)] = db.execute("SELECT version FROM schema_version").fetchall()
        return int(version)


@pytest.fixture
async def legacy_v11_layout(tmp_path: Path) -> dict[str, dict[str, Any]]:
    """The schema legacy version 11 made, as SQLite describes it."""
    return await layout_of(legacy_file(tmp_path / "legacy-11.db", 11, {}))


# --- a fresh database -------------------------------------------------------------------------


# 0002_pacing: one turn per key, due at ``next_at``.
PACING_LAYOUT = {
    "columns": [("key", "TEXT", False, None), ("next_at", "TEXT", False, None)],
    "primary_key": ["key"],
    "foreign_keys": [],
    "unique": [],
    "indexes": [],
}


async def test_a_fresh_database_gets_the_schema_of_legacy_version_11_and_the_pacing_table(
    engine: AsyncEngine, database: str, legacy_v11_layout: dict[str, dict[str, Any]]
) -> None:
    async with engine.connect() as connection:
        assert await schema_status(connection) is SchemaStatus.OUTDATED
    await upgrade(engine)
    assert await layout_of(database) == legacy_v11_layout | {"pacing": PACING_LAYOUT}
    assert await alembic_revisions(engine) == [HEAD]
    async with engine.connect() as connection:
        assert await schema_status(connection) is SchemaStatus.CURRENT
        await require_current_schema(connection)


async def test_upgrading_a_current_database_runs_nothing(
    engine: AsyncEngine, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    await upgrade(engine)
    before = await layout_of(database)
    async with engine.begin() as connection:
        await insert(connection, "reward_requests", REQUEST)
    with caplog.at_level(logging.INFO, logger="alembic"):
        await upgrade(engine)
    assert "Running upgrade" not in caplog.text
    assert await layout_of(database) == before
    assert await alembic_revisions(engine) == [HEAD]
    async with engine.connect() as connection:
        ids = await connection.execute(sa.text("SELECT id FROM reward_requests"))
        assert list(ids.scalars()) == [REQUEST["id"]]


async def test_an_upgrade_lands_only_when_the_caller_commits(
    engine: AsyncEngine, database: str
) -> None:
    async with engine.connect() as connection:
        await connection.begin()
        await upgrade_schema(connection)
        await connection.rollback()
    assert await layout_of(database) == {}
    async with engine.connect() as connection:
        assert await schema_status(connection) is SchemaStatus.OUTDATED


async def test_a_database_at_the_baseline_gains_an_empty_pacing_table_and_keeps_its_rows(
    engine: AsyncEngine, database: str, legacy_v11_layout: dict[str, dict[str, Any]]
) -> None:
    await upgrade_to(engine, "0001_baseline")
    async with engine.begin() as connection:
        await insert(connection, "reward_requests", REQUEST)
    assert await layout_of(database) == legacy_v11_layout
    await upgrade(engine)
    assert await alembic_revisions(engine) == [HEAD]
    assert (await layout_of(database))["pacing"] == PACING_LAYOUT
    async with engine.connect() as connection:
        ids = await connection.execute(sa.text("SELECT id FROM reward_requests"))
        assert list(ids.scalars()) == [REQUEST["id"]]
        turns = await connection.execute(sa.text("SELECT COUNT(*) FROM pacing"))
        assert turns.scalar_one() == 0


async def insert(connection: AsyncConnection, table: str, row: dict[str, Any]) -> None:
    columns = ", ".join(row)
    values = ", ".join(f":{column}" for column in row)
    await connection.execute(sa.text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), row)


async def test_ids_are_never_reused(engine: AsyncEngine) -> None:
    await upgrade(engine)
    request = {k: v for k, v in REQUEST.items() if k not in ("id", "idempotency_key")}
    async with engine.begin() as connection:
        await insert(connection, "reward_requests", request)
        await connection.execute(sa.text("DELETE FROM reward_requests"))
        await insert(connection, "reward_requests", request)
        ids = await connection.execute(sa.text("SELECT id FROM reward_requests"))
        assert list(ids.scalars()) == [2]


async def test_one_address_change_waits_per_request(engine: AsyncEngine) -> None:
    await upgrade(engine)
    change = ROWS_AT_11["email_changes"][0]
    async with engine.begin() as connection:
        await insert(connection, "reward_requests", REQUEST)
        await insert(connection, "email_changes", change | {"outcome": "expired"})
        await insert(connection, "email_changes", change | {"id": 3})
    async with engine.connect() as connection:
        with pytest.raises(IntegrityError):
            await insert(connection, "email_changes", change | {"id": 4})


@pytest.mark.postgresql_only("PostgreSQL's lock on the upgrade, taken inside open transactions")
async def test_two_processes_starting_together_migrate_once(
    engine: AsyncEngine, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    other = bot_engine(database)
    both_begun = asyncio.Barrier(2)

    async def start(engine: AsyncEngine) -> None:
        async with engine.begin() as connection:
            await connection.execute(sa.text("SELECT 1"))
            # Both transactions are open before either looks at the schema.
            await both_begun.wait()
            await upgrade_schema(connection)

    try:
        with caplog.at_level(logging.INFO, logger="alembic"):
            await asyncio.gather(start(engine), start(other))
    finally:
        await other.dispose()
    assert caplog.text.count("Running upgrade") == len(REVISIONS)
    assert await alembic_revisions(engine) == [HEAD]


@pytest.mark.postgresql_only("a PostgreSQL database and a SQLite file upgraded side by side")
async def test_one_process_upgrades_two_databases_at_once(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    sqlite_engine = bot_engine(tmp_path / "rewardbot.db")
    try:
        # Alembic's running migration is process-wide: without taking turns, one of these
        # runs the other's steps, or both wait forever.
        await asyncio.wait_for(asyncio.gather(upgrade(engine), upgrade(sqlite_engine)), 30)
        for upgraded in (engine, sqlite_engine):
            assert await alembic_revisions(upgraded) == [HEAD]
    finally:
        await sqlite_engine.dispose()


# --- SQLite files made before Alembic ---------------------------------------------------------

LEGACY = "SQLite files made before Alembic, built with sqlite3"


@pytest.mark.sqlite_only(LEGACY)
@pytest.mark.parametrize(
    ("version", "rows"), [(8, ROWS_AT_8), (11, ROWS_AT_11)], ids=["version-8", "version-11"]
)
async def test_a_legacy_file_is_adopted_with_every_row(
    engine: AsyncEngine,
    database: str,
    tmp_path: Path,
    version: int,
    rows: dict[str, list[dict[str, Any]]],
) -> None:
    path = legacy_file(Path(database), version, rows)
    before = rows_in(path)
    async with engine.connect() as connection:
        assert await schema_status(connection) is SchemaStatus.OUTDATED
    await upgrade(engine)

    after = rows_in(path)
    for table, table_rows in before.items():
        # Columns added since keep their defaults; every value the file held is unchanged.
        assert [{k: row[k] for k in table_rows[0]} for row in after[table]] == table_rows
    assert await alembic_revisions(engine) == [HEAD]
    # What a rewardbot from before Alembic reads: a version after its last, so it refuses the
    # file as a newer rewardbot's.
    assert legacy_version(path) == ADOPTED_LEGACY_VERSION > len(MIGRATIONS)
    async with engine.connect() as connection:
        assert await schema_status(connection) is SchemaStatus.CURRENT
    fresh = bot_engine(tmp_path / "fresh.db")
    await upgrade(fresh)
    await fresh.dispose()
    assert await layout_of(path) == await layout_of(tmp_path / "fresh.db")


@pytest.mark.sqlite_only(LEGACY)
async def test_an_adopted_file_gets_the_data_steps_of_the_legacy_versions_it_missed(
    engine: AsyncEngine, database: str
) -> None:
    path = legacy_file(Path(database), 8, ROWS_AT_8)
    await upgrade(engine)
    after = rows_in(path)
    # Version 9: an order sent before it whose answer never came is unsettled from its claim on.
    assert after["order_sends"] == [
        {"order_key": "rb-7-1", "provider": "sandbox", "fingerprint": None}
        | {"first_sent_at": STARTED, "last_sent_at": STARTED, "sends": 1}
        | {"unsettled_since": STARTED, "last_answered": 0}
    ]
    assert [(job["waiting"], job["nudged"]) for job in after["jobs"]] == [(0, 0)]


# --- newer than this rewardbot ----------------------------------------------------------------


async def refused_as_newer(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await schema_status(connection) is SchemaStatus.NEWER
        with pytest.raises(RuntimeError, match="newer than this rewardbot"):
            await require_current_schema(connection)
    with pytest.raises(
        RuntimeError, match=rf"newer than this rewardbot's \({HEAD}\): upgrade rewardbot"
    ):
        await upgrade(engine)


async def test_a_revision_this_rewardbot_does_not_know_is_refused(
    engine: AsyncEngine, database: str
) -> None:
    await upgrade(engine)
    async with engine.begin() as connection:
        await connection.execute(sa.text("UPDATE alembic_version SET version_num = '0099_later'"))
    before = await layout_of(database)
    await refused_as_newer(engine)
    assert await alembic_revisions(engine) == ["0099_later"]
    assert await layout_of(database) == before


@pytest.mark.sqlite_only(LEGACY)
async def test_a_legacy_version_after_the_last_is_refused(
    engine: AsyncEngine, database: str
) -> None:
    path = legacy_file(Path(database), 11, {})
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("UPDATE schema_version SET version = 99")
    await refused_as_newer(engine)
    assert legacy_version(path) == 99
    assert "alembic_version" not in tables_in(path)


# --- readers that must not write ---------------------------------------------------------------


@pytest.mark.sqlite_only(LEGACY)
async def test_a_reader_refuses_a_database_not_yet_upgraded_without_writing(
    engine: AsyncEngine, database: str
) -> None:
    legacy_file(Path(database), 11, {})
    reader = bot_engine(database, read_only=True)
    try:
        async with reader.connect() as connection:
            assert await schema_status(connection) is SchemaStatus.OUTDATED
            with pytest.raises(
                RuntimeError,
                match=r"\(legacy version 11\) is older .*"
                r" \(or run `rewardbot migrate`\) to upgrade it",
            ):
                await require_current_schema(connection)
        await upgrade(engine)
        async with reader.connect() as connection:
            assert await schema_status(connection) is SchemaStatus.CURRENT
            await require_current_schema(connection)
    finally:
        await reader.dispose()


@pytest.mark.postgresql_only("PostgreSQL's read-only transactions")
async def test_status_is_read_in_a_read_only_postgresql_transaction(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(sa.text("SET TRANSACTION READ ONLY"))
        assert await schema_status(connection) is SchemaStatus.OUTDATED
        with pytest.raises(RuntimeError, match=r"\(none yet\) is older .* start this"):
            await require_current_schema(connection)
    await upgrade(engine)
    async with engine.connect() as connection:
        await connection.execute(sa.text("SET TRANSACTION READ ONLY"))
        assert await schema_status(connection) is SchemaStatus.CURRENT
        await require_current_schema(connection)
