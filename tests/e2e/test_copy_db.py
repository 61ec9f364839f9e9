"""``rewardbot copy-db``: an installation's history moved into another database, row for row, or
refused with nothing written."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect

from bot.domain import Status
from bot.store import Change, DatabaseUrl, JobKind, Store
from bot.store.copy import CopyRefused, copy_database
from tests.databases import engine_for
from tests.support import rewardbot, sql_execute, sql_rows
from tests.unit.support import new_request

# Every table of the store, with its primary key: how its rows are ordered to compare them.
TABLES = {
    "reward_requests": "id",
    "approval_cards": "request_id, approver_id",
    "events": "id",
    "jobs": "id",
    "order_sends": "order_key",
    "email_changes": "id",
    "pacing": "key",
}
SOON = datetime.now(UTC) + timedelta(days=1)


async def make_history(database: str) -> None:
    """Some of everything the store keeps, made through the store: a request with its cards,
    summary and a redirected address; a batch of three approved into one shared order, whose
    fulfil job holds a lease and recorded a send; a finished notification; events; a turn
    taken at a provider's pace."""
    store = await Store.open(database)
    try:
        single, _ = await store.create_request(
            new_request().model_copy(update={"message": 'Merci ✨ for the "fix" of O\'Brien'}),
            "V1",
        )
        await store.add_approval_card(single.id, "UAPP", "D1", "1.1")
        await store.add_approval_card(single.id, "UAPP2", "D2", "1.2")
        await store.set_summary_message(single.id, "C1", "2.1", "https://example.slack.com/p2")
        await store.propose_email_change(single.id, "me@elsewhere.example", "UAPP", SOON)
        batch, _ = await store.create_requests([new_request()] * 3, "V2")
        owner, key = batch[0].id, f"rewardbot-{batch[0].id}-shared"
        changes = [
            Change(
                r.id,
                Status.PENDING_APPROVAL,
                Status.APPROVED,
                then=(JobKind.FULFIL,) if r.id == owner else (),
                columns={"order_key": key, "order_owner": owner, "idempotency_key": f"k-{r.id}"},
            )
            for r in batch
        ]
        assert await store.transition_all(changes, "UAPP")
        fulfil = await store.claim_job("runner", 300, JobKind.FULFIL)
        assert fulfil is not None
        await store.record_send(fulfil, "sandbox", key, "body-digest")
        notify = await store.claim_job("runner", 300, JobKind.NOTIFY)
        assert notify is not None
        await store.finish_job(notify)
        await store.reserve_turn("provider:sandbox", 1.0)
    finally:
        await store.close()


async def dumps(database: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, ordered by primary key."""
    return {
        table: await sql_rows(database, f"SELECT * FROM {table} ORDER BY {key}")
        for table, key in TABLES.items()
    }


async def table_names(database: str) -> set[str]:
    engine = engine_for(database)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def copy_db(*args: str, cwd: Path) -> tuple[int, str, str]:
    """``rewardbot copy-db`` run as an admin runs it: exit code, standard output and error."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REWARDBOT_"))}
    process = await rewardbot("copy-db", *args, env=env, cwd=cwd, stdout=subprocess.PIPE)
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_a_history_moves_row_for_row_and_back(database: str, tmp_path: Path) -> None:
    source = str(tmp_path / "source.db")
    await make_history(source)
    history = await dumps(source)
    assert all(history.values()), "the history has rows in every table"

    code, out, err = await copy_db("--from", source, "--to", database, cwd=tmp_path)

    assert (code, err) == (0, "")
    *per_table, last = out.splitlines()
    assert sorted(per_table) == sorted(f"{t}: {len(rows)} rows" for t, rows in history.items())
    total = sum(len(rows) for rows in history.values())
    target = DatabaseUrl.parse(database)
    assert last == f"rewardbot: copied {total} rows from {source} to {target}."
    assert await dumps(database) == history
    # And back out of it, a few rows at a time.
    back = tmp_path / "back.db"
    copied = await copy_database(target, DatabaseUrl.parse(back), batch_rows=2)
    assert {c.name: c.rows for c in copied} == {t: len(rows) for t, rows in history.items()}
    assert await dumps(str(back)) == history


async def test_the_copy_takes_new_rows_after_the_copied_ones_and_runs_their_jobs(
    database: str, tmp_path: Path
) -> None:
    source = str(tmp_path / "source.db")
    await make_history(source)
    history = await dumps(source)
    await (await Store.open(database)).close()  # a schema, but no row: still empty
    await copy_database(DatabaseUrl.parse(source), DatabaseUrl.parse(database))

    store = await Store.open(database)
    try:
        highest = {t: max(row["id"] for row in history[t]) for t in TABLES if TABLES[t] == "id"}
        request, _ = await store.create_request(new_request(), "V-after-the-move")
        change = await store.propose_email_change(request.id, "x@elsewhere.example", "U", SOON)
        assert request.id == highest["reward_requests"] + 1
        assert change.id == highest["email_changes"] + 1
        for table in ("events", "jobs"):
            ids = await sql_rows(
                database, f"SELECT id FROM {table} WHERE request_id = :id", id=request.id
            )
            assert ids and min(row["id"] for row in ids) > highest[table], table
        # The copied jobs run here: the waiting notifications, and the fulfil job once the
        # lease of the runner that held it (on the old database) is given back.
        notify = await store.claim_job("new-runner", 30, JobKind.NOTIFY)
        assert notify is not None and notify.id <= highest["jobs"]
        assert await store.claim_job("new-runner", 30, JobKind.FULFIL) is None
        await store.release_jobs("runner")
        fulfil = await store.claim_job("new-runner", 30, JobKind.FULFIL)
        [copied_fulfil] = [job for job in history["jobs"] if job["kind"] == JobKind.FULFIL]
        assert fulfil is not None and fulfil.id == copied_fulfil["id"]
        assert (await store.send_record(f"rewardbot-{fulfil.request_id}-shared")).sends == 1
    finally:
        await store.close()


async def test_a_target_with_any_row_is_refused_and_left_alone(
    database: str, tmp_path: Path
) -> None:
    source = str(tmp_path / "source.db")
    await make_history(source)
    store = await Store.open(database)
    await store.create_request(new_request(), "V-already-here")
    await store.close()
    before = await dumps(database)

    code, out, err = await copy_db("--from", source, "--to", database, cwd=tmp_path)

    assert (code, out) == (2, "")
    target = DatabaseUrl.parse(database)
    assert err == (
        f"rewardbot: {target} is not empty (rows in reward_requests, events, jobs): "
        "copy into an empty database.\n"
    )
    assert await dumps(database) == before


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("DELETE FROM alembic_version", r"older .* start this rewardbot once \(or run `rewardbot"),
        ("UPDATE alembic_version SET version_num = '0099_later'", "newer .*: upgrade rewardbot"),
    ],
    ids=["older", "newer"],
)
async def test_a_source_not_at_this_rewardbots_schema_is_refused(
    database: str, tmp_path: Path, change: str, reason: str
) -> None:
    await make_history(database)
    await sql_execute(database, change)
    target = tmp_path / "target.db"

    code, out, err = await copy_db("--from", database, "--to", str(target), cwd=tmp_path)

    assert (code, out) == (2, "")
    [line] = err.splitlines()
    assert line.startswith(f"rewardbot: Cannot copy from {DatabaseUrl.parse(database)}: "), line
    assert re.search(reason, line), line
    assert not target.exists()


async def test_a_database_is_not_copied_into_itself(database: str, tmp_path: Path) -> None:
    await make_history(database)
    before = await dumps(database)
    names = [database]
    if not database.startswith("postgresql"):
        (tmp_path / "link.db").symlink_to(database)
        names.append(str(tmp_path / "link.db"))
    runs = [copy_db("--from", database, "--to", name, cwd=tmp_path) for name in names]
    for code, out, err in await asyncio.gather(*runs):
        assert (code, out) == (2, "")
        assert err == (
            f"rewardbot: {DatabaseUrl.parse(database)} is both the source and the target: "
            "copy into another one.\n"
        )
    assert await dumps(database) == before


async def test_databases_whose_tables_differ_are_refused_with_nothing_written(
    database: str, tmp_path: Path
) -> None:
    source = str(tmp_path / "source.db")
    await make_history(source)
    await sql_execute(source, "ALTER TABLE events ADD COLUMN mood TEXT")
    await sql_execute(source, "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")

    code, out, err = await copy_db("--from", source, "--to", database, cwd=tmp_path)

    assert (code, out) == (2, "")
    assert err == (
        f"rewardbot: {source} and {DatabaseUrl.parse(database)} differ, so nothing was copied: "
        "only one of them has table notes, column events.mood.\n"
    )
    assert await table_names(database) == set()  # not even the schema


@pytest.mark.postgresql_only("a reference PostgreSQL enforces and SQLite's connection does not")
async def test_a_copy_that_fails_halfway_leaves_nothing_behind(
    database: str, tmp_path: Path
) -> None:
    source = str(tmp_path / "source.db")
    await make_history(source)
    # A job of a request that is not there (SQLite checks no reference unless asked to).
    await sql_execute(
        source, "UPDATE jobs SET request_id = 99 WHERE id = (SELECT MAX(id) FROM jobs)"
    )

    with pytest.raises(CopyRefused) as refused:
        # One row at a time: the tables and rows before the bad one were inserted, then undone.
        await copy_database(DatabaseUrl.parse(source), DatabaseUrl.parse(database), batch_rows=1)

    message = str(refused.value)
    assert message.startswith(f"Copying into {DatabaseUrl.parse(database)} failed, nothing was")
    assert "foreign key" in message and "\n" not in message
    assert await table_names(database) == set()


async def test_a_database_that_cannot_be_opened_is_one_line_without_its_password(
    tmp_path: Path,
) -> None:
    source = tmp_path / "source.db"
    await make_history(str(source))
    cases = {
        ("--from", str(tmp_path / "missing.db")): f"No database at {tmp_path}/missing.db to copy",
        ("--from", "mysql://admin:hunter2@db/rewards"): "--from uses 'mysql': rewardbot keeps",
        ("--to", "postgresql://admin:hunter2@127.0.0.1:1/rewards"): (
            "Cannot write postgresql://admin:***@127.0.0.1:1/rewards: "
        ),
        ("--to", str(tmp_path / "no" / "such" / "folder.db")): "Cannot write ",
    }
    defaults = {"--from": str(source), "--to": str(tmp_path / "target.db")}
    runs = [
        copy_db(*(a for pair in (defaults | {option: value}).items() for a in pair), cwd=tmp_path)
        for option, value in cases
    ]
    for start, (code, out, err) in zip(cases.values(), await asyncio.gather(*runs), strict=True):
        assert (code, out) == (2, ""), err
        [line] = err.splitlines()
        assert line.startswith(f"rewardbot: {start}") and "hunter2" not in line, line
    assert not (tmp_path / "target.db").exists()


async def test_the_copy_is_of_one_moment_while_a_bot_writes_the_source(
    database: str, tmp_path: Path
) -> None:
    await make_history(database)
    target = tmp_path / "target.db"
    copying = asyncio.create_task(
        copy_database(DatabaseUrl.parse(database), DatabaseUrl.parse(target), batch_rows=1)
    )
    store = await Store.open(database)
    written = 0
    while not copying.done():  # each request with its "created" event, in one transaction
        written += 1
        await store.create_request(new_request(), f"while-copying-{written}")
    await store.close()
    await copying
    copied = await dumps(str(target))
    # Requests are copied before events: read at different moments, events of requests made
    # in between would point at requests the copy does not have.
    requests = {row["id"] for row in copied["reward_requests"]}
    created = {row["request_id"] for row in copied["events"] if row["kind"] == "created"}
    assert written > 1 and requests == created
    assert len(requests) < len(await sql_rows(database, "SELECT id FROM reward_requests"))
