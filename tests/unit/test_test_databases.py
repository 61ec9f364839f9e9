"""The test databases themselves (``tests/databases.py``): each PostgreSQL test gets a new empty
database that is gone afterwards, the SQL helpers read and write either kind, and the tier is
left out with one line when not asked for, and stops the run when asked for but unreachable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.databases import (
    EXAMPLE_POSTGRES_URL,
    POSTGRES_URL_VARIABLE,
    TEST_DATABASE_PREFIX,
    engine_for,
    postgres_admin_url,
    postgres_database,
)
from tests.support import free_port, sql_execute, sql_rows

ROOT = Path(__file__).resolve().parents[2]


async def test_the_sql_helpers_write_and_read_either_database(database: str) -> None:
    await sql_execute(database, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    assert await sql_execute(database, "INSERT INTO notes VALUES (:id, :body)", id=1, body="a") == 1
    assert await sql_execute(database, "INSERT INTO notes VALUES (:id, :body)", id=2, body="b") == 1
    assert await sql_execute(database, "UPDATE notes SET body = 'c' WHERE id > :id", id=0) == 2
    rows = await sql_rows(database, "SELECT id, body FROM notes WHERE id = :id", id=2)
    assert rows == [{"id": 2, "body": "c"}]


async def _databases(admin: str) -> set[str]:
    rows = await sql_rows(admin, "SELECT datname FROM pg_database")
    return {row["datname"] for row in rows}


@pytest.mark.postgresql_only("the PostgreSQL tier's own databases")
async def test_each_postgresql_test_gets_a_new_empty_database_dropped_after(database: str) -> None:
    admin = postgres_admin_url()
    assert admin is not None and database.startswith("postgresql://")
    assert await sql_rows(database, "SELECT 1 AS one") == [{"one": 1}]
    tables = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    assert await sql_rows(database, tables) == []

    async with postgres_database(admin) as other:
        name = other.rsplit("/", 1)[1]
        assert name.startswith(TEST_DATABASE_PREFIX) and other != database
        assert name in await _databases(admin)
        # A session still open at the end (a killed bot's) does not keep it alive.
        engine = engine_for(other)
        connection = await engine.connect()
        await connection.execute(text("SELECT 1"))
    try:
        assert name not in await _databases(admin)
    finally:
        await connection.invalidate()  # its server end is gone: only let go of it here
        await engine.dispose()


def _pytest(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """pytest on a module of one test with the ``database`` fixture and one without, in its
    own process with only ``tests.databases`` as a plugin and ``env`` as the tier's setting."""
    (tmp_path / "test_probe.py").write_text(
        "def test_with_a_database(database): pass\n\ndef test_without_one(): pass\n"
    )
    settings = {k: v for k, v in os.environ.items() if k != POSTGRES_URL_VARIABLE}
    plugins = ["-p", "tests.databases", "-p", "no:cacheprovider"]
    options = ["-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function"]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *plugins, *options],
        cwd=tmp_path,
        env=settings | {"PYTHONPATH": str(ROOT)} | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_the_variable_the_tier_is_left_out_with_one_line(tmp_path: Path) -> None:
    done = _pytest(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed, 1 deselected" in done.stdout
    [line] = [line for line in done.stdout.splitlines() if "PostgreSQL" in line]
    assert POSTGRES_URL_VARIABLE in line and EXAMPLE_POSTGRES_URL in line


def test_with_the_variable_set_an_unreachable_server_stops_the_run(tmp_path: Path) -> None:
    nobody = f"postgresql://postgres:hush-7731@127.0.0.1:{free_port()}/postgres"
    done = _pytest(tmp_path, **{POSTGRES_URL_VARIABLE: nobody})
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.strip()]
    assert POSTGRES_URL_VARIABLE in line and "PostgreSQL does not answer" in line, line
    assert "hush-7731" not in done.stdout + done.stderr
