"""The databases the store's tests run on: a pytest plugin, loaded by ``tests/conftest.py``.

Every test that uses the ``database`` fixture (itself, or through ``stack`` and the other
whole-bot fixtures) runs once per database: ``[sqlite]`` on a file in its ``tmp_path``, and
``[postgresql]`` on a PostgreSQL database created for it alone and dropped after it. The fixture
is the string an admin would put in ``REWARDBOT_DATABASE``: the file's path, or a
``postgresql://`` URL.

The PostgreSQL tier needs a server: ``REWARDBOT_TEST_POSTGRES_URL`` names an admin connection to
it, one that may create and drop databases. Without the variable the PostgreSQL tests are
deselected and the run ends with one line saying how to run them; with it set and the server
unreachable, the run stops with an error (a tier asked for is never quietly skipped).

A test about SQLite itself (its file, a corrupt file, an upgrade only SQLite databases have
had) is marked ``@pytest.mark.sqlite_only("why")``; a test of what only a PostgreSQL server can
do, ``@pytest.mark.postgresql_only("why")``.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from bot.store.database import DatabaseUrl

POSTGRES_URL_VARIABLE = "REWARDBOT_TEST_POSTGRES_URL"
EXAMPLE_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SQLITE, POSTGRESQL = "sqlite", "postgresql"
# Every test database's name starts so, to tell a leftover of a killed run at a glance.
TEST_DATABASE_PREFIX = "rewardbot_test_"

# Per session: how many PostgreSQL tests were left out, and how long each CREATE/DROP took.
_deselected = pytest.StashKey[int]()
_timings = pytest.StashKey[dict[str, list[float]]]()


def postgres_admin_url() -> str | None:
    """The admin connection of the PostgreSQL tier, if it is enabled."""
    return os.environ.get(POSTGRES_URL_VARIABLE) or None


def engine_for(database: str, **options: Any) -> AsyncEngine:
    """An engine on ``database`` (as ``REWARDBOT_DATABASE`` names it, read as the bot reads it)
    holding no connection between uses (a test's reads and writes never keep one open beside the
    bot's; dispose of it all the same), unless ``options`` give it a ``poolclass`` of their own."""
    url = DatabaseUrl.parse(database).url
    # SQLite: wait for the bot's write lock as long as the bot itself would, and then some.
    connect_args = {"timeout": 10} if url.get_backend_name() == SQLITE else {}
    options.setdefault("poolclass", NullPool)
    return create_async_engine(url, connect_args=connect_args, **options)


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


# -- which tests run on which database ----------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only(reason): about SQLite itself, so run on SQLite only"
    )
    config.addinivalue_line(
        "markers", "postgresql_only(reason): about a PostgreSQL server, so run on it only"
    )
    config.stash[_deselected] = 0
    timings: dict[str, list[float]] = {"CREATE": [], "DROP": []}
    config.stash[_timings] = timings


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database" not in metafunc.fixturenames:
        return
    kinds = [SQLITE, POSTGRESQL]
    for marker, only in (("sqlite_only", SQLITE), ("postgresql_only", POSTGRESQL)):
        if (found := metafunc.definition.get_closest_marker(marker)) is not None:
            if not found.args:
                raise pytest.UsageError(f"{metafunc.definition.nodeid}: {marker} needs a reason")
            kinds = [only]
    metafunc.parametrize("database", kinds, indirect=True)


def _database_kind(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return None if callspec is None else callspec.params.get("database")


@pytest.hookimpl(trylast=True)  # after -k and -m: only what is still selected counts
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_postgresql = [item for item in items if _database_kind(item) == POSTGRESQL]
    if not on_postgresql:
        return
    admin = postgres_admin_url()
    if admin is None:
        items[:] = [item for item in items if _database_kind(item) != POSTGRESQL]
        config.hook.pytest_deselected(items=on_postgresql)
        config.stash[_deselected] = len(on_postgresql)
        return
    try:
        asyncio.run(_answers(admin))
    except Exception as exc:
        raise pytest.UsageError(
            f"{POSTGRES_URL_VARIABLE}={_shown(admin)}: PostgreSQL does not answer ({exc}). "
            f"Start it, or unset {POSTGRES_URL_VARIABLE} to run without the PostgreSQL tier."
        ) from None


async def _answers(admin: str) -> None:
    engine = engine_for(admin)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


# Run across processes (pytest-xdist, as ``make test`` does), each worker counts its own: it
# hands its figures to the process that reports (``workeroutput``), which adds them up.
_WORKER_FIGURES = "rewardbot_databases"


def pytest_sessionfinish(session: pytest.Session) -> None:
    worker_output = getattr(session.config, "workeroutput", None)
    if worker_output is not None:
        config = session.config
        worker_output[_WORKER_FIGURES] = {
            "deselected": config.stash.get(_deselected, 0),
            "timings": config.stash.get(_timings, {}),
        }


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's, called where it reports
def pytest_testnodedown(node: Any, error: object) -> None:
    figures = getattr(node, "workeroutput", {}).get(_WORKER_FIGURES)
    if figures is None:
        return
    config: pytest.Config = node.config
    # Every worker collects every test: each deselects the same ones.
    config.stash[_deselected] = max(config.stash.get(_deselected, 0), figures["deselected"])
    for what, seconds in figures["timings"].items():
        config.stash[_timings].setdefault(what, []).extend(seconds)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    config = terminalreporter.config
    if deselected := config.stash.get(_deselected, 0):
        terminalreporter.write_line(
            f"PostgreSQL tier skipped ({deselected} tests deselected): set "
            f"{POSTGRES_URL_VARIABLE}, e.g. {POSTGRES_URL_VARIABLE}={EXAMPLE_POSTGRES_URL}",
            yellow=True,
        )
    timings = config.stash.get(_timings, {})
    if timings.get("CREATE"):
        average = {what: 1000 * sum(t) / len(t) for what, t in timings.items() if t}
        terminalreporter.write_line(
            f"PostgreSQL tier: {len(timings['CREATE'])} test databases, on average "
            + ", ".join(f"{what} {ms:.0f} ms" for what, ms in average.items())
        )


# -- the fixture -----------------------------------------------------------------------------


@pytest.fixture
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """This test's own empty database, as ``REWARDBOT_DATABASE`` would name it; the store
    creates the schema when it opens it."""
    if request.param == SQLITE:
        yield str(tmp_path / "rewardbot.db")
        return
    admin = postgres_admin_url()
    assert admin is not None, "deselected without the PostgreSQL tier"
    async with postgres_database(admin, request.config.stash[_timings]) as url:
        yield url


@asynccontextmanager
async def postgres_database(
    admin: str, timings: dict[str, list[float]] | None = None
) -> AsyncIterator[str]:
    """A new, empty database on the server ``admin`` connects to, dropped (whoever is still
    connected: a killed bot's sessions too) when the block ends; its ``postgresql://`` URL."""
    name = f"{TEST_DATABASE_PREFIX}{uuid.uuid4().hex[:16]}"
    # CREATE and DROP DATABASE cannot run inside a transaction.
    engine = engine_for(admin, isolation_level="AUTOCOMMIT")

    async def timed(what: str, statement: str) -> None:
        started = time.perf_counter()
        async with engine.connect() as connection:
            await connection.execute(text(statement))
        if timings is not None:
            timings[what].append(time.perf_counter() - started)

    try:
        await timed("CREATE", f'CREATE DATABASE "{name}"')
        try:
            url = make_url(admin).set(drivername=POSTGRESQL, database=name)
            yield url.render_as_string(hide_password=False)
        finally:
            await timed("DROP", f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await engine.dispose()


# Ends every session on the database, as an admin, a server restart or a failover ends them.
_TERMINATE = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"


async def _as_admin(database: str, *statements: str) -> None:
    """Run ``statements`` on the PostgreSQL tier's admin connection, in turn, each in its own
    transaction; ``{name}`` (an identifier) and ``:name`` (a value) are ``database``'s name."""
    admin = postgres_admin_url()
    assert admin is not None, "a PostgreSQL database without the PostgreSQL tier"
    name = make_url(database).database
    engine = engine_for(admin, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement.format(name=name)), {"name": name})
    finally:
        await engine.dispose()


async def terminate_sessions(database: str) -> None:
    """End every session connected to the PostgreSQL ``database`` (a bot's pooled and
    listening connections, mid-transaction or idle): each one's next use fails. New
    connections are accepted as before."""
    await _as_admin(database, _TERMINATE)


@asynccontextmanager
async def unreachable(database: str) -> AsyncIterator[None]:
    """``database`` cannot be opened inside the block, as when its file is gone or its server
    refuses connections, while a bot's connections that were open stay open (SQLite) or are cut
    (PostgreSQL, as a server restart cuts them); it is back as it was after the block."""
    if not database.startswith(POSTGRESQL):
        # Tests run as root, where chmod does not stop reads: the file is moved aside instead.
        path = Path(database)
        aside = path.with_name(f"{path.name}.aside")
        path.rename(aside)  # noqa: ASYNC240 - a rename, instant
        try:
            yield
        finally:
            aside.rename(path)
        return
    await _as_admin(database, 'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false', _TERMINATE)
    try:
        yield
    finally:
        await _as_admin(database, 'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
