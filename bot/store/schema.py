"""The database schema, and the upgrade of a database to the one this rewardbot reads.

One history for SQLite and PostgreSQL: Alembic's, in :mod:`bot.store.migrations` (its
``env.py`` says how to add a revision). Its first revision, ``0001_baseline``, is the schema
that legacy version 11 left. SQLite files older than Alembic carry a ``schema_version`` table
instead of ``alembic_version``: :func:`upgrade_schema` finishes their upgrade through the legacy
:data:`MIGRATIONS`, stamps them with the baseline, then upgrades them like any other database.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

log = logging.getLogger(__name__)

# The schema versions of SQLite files made before Alembic, frozen: a file at any of them is
# adopted by running the rest. Each entry migrates the schema from version N to N+1.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE reward_requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        requester_id TEXT NOT NULL,
        recipient_id TEXT NOT NULL,
        origin_channel_id TEXT NOT NULL,
        amount TEXT NOT NULL,
        currency TEXT NOT NULL,
        provider TEXT NOT NULL,
        product_id TEXT NOT NULL,
        product_name TEXT NOT NULL,
        message TEXT NOT NULL,
        status TEXT NOT NULL,
        idempotency_key TEXT UNIQUE,
        provider_order_id TEXT,
        charged_amount TEXT,
        charged_currency TEXT,
        decided_by TEXT,
        decision_reason TEXT,
        failure_reason TEXT,
        summary_channel TEXT,
        summary_ts TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX reward_requests_status ON reward_requests(status);
    CREATE TABLE approval_cards (
        request_id INTEGER NOT NULL REFERENCES reward_requests(id),
        approver_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        ts TEXT NOT NULL,
        PRIMARY KEY (request_id, approver_id)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id INTEGER NOT NULL REFERENCES reward_requests(id),
        kind TEXT NOT NULL,
        from_status TEXT,
        to_status TEXT,
        actor TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}',
        at TEXT NOT NULL
    );
    CREATE INDEX events_request ON events(request_id, id);
    """,
    # Slack's view id of the submitted modal: a resubmission (after Slack timed out waiting
    # for our ack) must not store the request twice.
    """
    ALTER TABLE reward_requests ADD COLUMN submission_key TEXT;
    CREATE UNIQUE INDEX reward_requests_submission ON reward_requests(submission_key);
    ALTER TABLE reward_requests ADD COLUMN recipient_name TEXT;
    ALTER TABLE reward_requests ADD COLUMN recipient_email TEXT;
    """,
    # Durable work: fulfilment and Slack notifications survive crashes and outages.
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        request_id INTEGER NOT NULL REFERENCES reward_requests(id),
        payload TEXT NOT NULL DEFAULT '{}',
        attempts INTEGER NOT NULL DEFAULT 0,
        run_after TEXT NOT NULL,
        lease_owner TEXT,
        lease_expires TEXT,
        last_error TEXT,
        created_at TEXT NOT NULL,
        done_at TEXT
    );
    CREATE INDEX jobs_open ON jobs(done_at, request_id, id);
    ALTER TABLE reward_requests ADD COLUMN delivery_started_at TEXT;
    INSERT INTO jobs (kind, request_id, run_after, created_at)
        SELECT 'fulfil', id, strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'),
               strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')
        FROM reward_requests WHERE status IN ('approved', 'ordering');
    """,
    # The approval policy: team routing, two-step approval, budgets, and permalinks for export.
    """
    ALTER TABLE reward_requests ADD COLUMN team TEXT;
    ALTER TABLE reward_requests ADD COLUMN approvals_required INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE reward_requests ADD COLUMN first_approved_by TEXT;
    ALTER TABLE reward_requests ADD COLUMN budget_amount TEXT;
    ALTER TABLE reward_requests ADD COLUMN budget_currency TEXT;
    ALTER TABLE reward_requests ADD COLUMN budget_month TEXT;
    ALTER TABLE reward_requests ADD COLUMN summary_permalink TEXT;
    CREATE INDEX reward_requests_budget ON reward_requests(budget_month, team);
    CREATE INDEX reward_requests_created ON reward_requests(created_at);
    """,
    # Scheduled delivery.
    """
    ALTER TABLE reward_requests ADD COLUMN deliver_at TEXT;
    """,
    # Bulk rewards: the requests of one submission, decided together, shown in one thread.
    """
    ALTER TABLE reward_requests ADD COLUMN batch_id INTEGER REFERENCES reward_requests(id);
    CREATE INDEX reward_requests_batch ON reward_requests(batch_id);
    """,
    # Orders scheduled natively by the provider, cancellable until its cut-off.
    """
    ALTER TABLE reward_requests ADD COLUMN cancel_before TEXT;
    """,
    # Several requests of a batch in one provider order.
    """
    ALTER TABLE reward_requests ADD COLUMN order_key TEXT;
    ALTER TABLE reward_requests ADD COLUMN order_owner INTEGER REFERENCES reward_requests(id);
    CREATE INDEX reward_requests_order_owner ON reward_requests(order_owner);
    """,
    # Exactly-once beyond one healthy process: every fact that prevents a repeat order or DM is
    # durable. ``order_sends`` records each send of an order's idempotency key before it is
    # made; ``delivery_claim`` is the job claim that started a delivery DM. A job waiting on a
    # provider (``waiting``) is postponed instead of holding a slot, and a webhook ``nudged``
    # it; ``waited_from`` is when, by the clock of the process that postponed it. Orders sent
    # before this version whose answer never came are unsettled from their
    # claim on, so they are reconciled, never re-sent blindly.
    """
    ALTER TABLE jobs ADD COLUMN waiting INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN waited_from TEXT;
    ALTER TABLE jobs ADD COLUMN nudged INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE reward_requests ADD COLUMN delivery_claim TEXT;
    CREATE INDEX reward_requests_provider_order ON reward_requests(provider, provider_order_id);
    CREATE TABLE order_sends (
        order_key TEXT PRIMARY KEY,
        provider TEXT NOT NULL,
        fingerprint TEXT,
        first_sent_at TEXT NOT NULL,
        last_sent_at TEXT NOT NULL,
        sends INTEGER NOT NULL DEFAULT 0,
        unsettled_since TEXT,
        last_answered INTEGER NOT NULL DEFAULT 0
    );
    INSERT OR IGNORE INTO order_sends (order_key, provider, first_sent_at, last_sent_at,
                                       sends, unsettled_since)
        SELECT COALESCE(order_key, idempotency_key), provider, updated_at, updated_at, 1,
               updated_at
        FROM reward_requests
        WHERE status = 'ordering' AND provider_order_id IS NULL
          AND COALESCE(order_key, idempotency_key) IS NOT NULL;
    """,
    # A delivered card is redirected to another address only once its recipient confirmed it.
    """
    CREATE TABLE email_changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id INTEGER NOT NULL REFERENCES reward_requests(id),
        email TEXT NOT NULL,
        requested_by TEXT NOT NULL,
        requested_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        outcome TEXT,
        decided_at TEXT
    );
    CREATE INDEX email_changes_request ON email_changes(request_id);
    """,
    # Who ended an address change (its recipient, or rewardbot: their own Slack email, expiry),
    # and at most one change waiting per request, whichever process asks. The previous version
    # let a change be proposed once an earlier one had lapsed unanswered, leaving both
    # waiting: all but the newest of a request end as expired first, with their events.
    """
    ALTER TABLE email_changes ADD COLUMN decided_by TEXT;
    CREATE TEMP TABLE lapsed_email_changes AS
        SELECT id FROM email_changes WHERE outcome IS NULL AND id NOT IN (
            SELECT MAX(id) FROM email_changes WHERE outcome IS NULL GROUP BY request_id);
    INSERT INTO events (request_id, kind, actor, detail, at)
        SELECT request_id, 'email_change_expired', 'rewardbot',
               json_object('to', 'email ' || substr(email, 1, 1) || '***@'
                                 || substr(email, instr(email, '@') + 1), 'change', id),
               expires_at
        FROM email_changes WHERE id IN (SELECT id FROM lapsed_email_changes) ORDER BY id;
    UPDATE email_changes SET outcome = 'expired', decided_at = expires_at,
                             decided_by = 'rewardbot'
        WHERE id IN (SELECT id FROM lapsed_email_changes);
    DROP TABLE lapsed_email_changes;
    CREATE UNIQUE INDEX email_changes_one_waiting ON email_changes(request_id)
        WHERE outcome IS NULL;
    """,
)


BASELINE = "0001_baseline"
MIGRATIONS_DIRECTORY = Path(__file__).with_name("migrations")
# What an adopted file's ``schema_version`` says from then on. The table is kept, and set above
# every legacy version, for the rewardbots from before Alembic: one started on an adopted file
# refuses it ("newer than this rewardbot: upgrade rewardbot") instead of writing to a schema it
# no longer knows. Without the table, such a rewardbot would take the file for an empty one and
# stop on its first CREATE TABLE ("table reward_requests already exists"), saying nothing of why.
ADOPTED_LEGACY_VERSION = len(MIGRATIONS) + 1
# The key of the PostgreSQL advisory lock held by the transaction that upgrades the schema: the
# ASCII bytes of "rbschema". Every rewardbot must take this same lock, so it never changes.
MIGRATION_LOCK_KEY = 0x7262736368656D61
# Alembic keeps the migration it runs in module globals (``alembic.context``, ``alembic.op``):
# two at once in one process, on two databases, would run each other's steps. One at a time,
# per event loop (the bot has one; each test has its own).
_ALEMBIC_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


class SchemaStatus(enum.Enum):
    """A database's schema, compared with the one this rewardbot reads."""

    CURRENT = "current"
    # Empty, from before Alembic, or at an earlier revision: upgrade_schema brings it up.
    OUTDATED = "outdated"
    # Written by a newer rewardbot: this one must not read or write it.
    NEWER = "newer"


@dataclass(frozen=True)
class _Found:
    """What a database says of its own schema."""

    legacy_version: int | None  # ``schema_version``'s, ``None`` without that table
    revisions: tuple[str, ...]  # ``alembic_version``'s, empty without that table

    def describe(self) -> str:
        if self.revisions:
            return "revision " + ", ".join(self.revisions)
        if self.legacy_version is not None:
            return f"legacy version {self.legacy_version}"
        return "none yet"


async def upgrade_schema(connection: AsyncConnection) -> None:
    """Bring the database to this rewardbot's schema, in the caller's transaction.

    The caller has begun the transaction (on SQLite with ``BEGIN IMMEDIATE``, so it holds the
    write lock) and commits it: every step, with its version stamp, lands then, or none does.
    On PostgreSQL the transaction must stay READ COMMITTED (the default): a process that waited
    for the lock must see the schema the first one committed. A database written by a newer
    rewardbot raises :class:`RuntimeError`, unchanged.
    """
    if connection.dialect.name == "postgresql":
        # Two processes starting together: the second waits here until the first commits,
        # then finds the schema current and does nothing.
        await connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
        )
    # Taken after the database's own lock: whoever holds this one never waits for another's.
    turn = _ALEMBIC_TURNS.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with turn:
        await connection.run_sync(_upgrade)


async def schema_status(connection: AsyncConnection) -> SchemaStatus:
    """How the database's schema compares with this rewardbot's. Reads only: fit for a
    read-only connection."""
    return await connection.run_sync(_status)


async def require_current_schema(connection: AsyncConnection) -> None:
    """Raise :class:`RuntimeError`, saying what to do, unless the database is at this
    rewardbot's schema (for readers that must not upgrade it, such as reports). Reads only."""
    found = await connection.run_sync(_find)
    status = _status_of(found, _scripts())
    if status is SchemaStatus.NEWER:
        raise RuntimeError(_newer_than_us(found))
    if status is SchemaStatus.OUTDATED:
        raise RuntimeError(
            f"the database's schema ({found.describe()}) is older than this rewardbot's "
            f"({_scripts().get_current_head()}): start this rewardbot once (or run "
            "`rewardbot migrate`) to upgrade it"
        )


def _upgrade(connection: Connection) -> None:
    found = _find(connection)
    status = _status_of(found, _scripts())
    if status is SchemaStatus.NEWER:
        raise RuntimeError(_newer_than_us(found))
    if status is SchemaStatus.CURRENT:
        return
    head = _scripts().get_current_head()
    # A new database is no news; an upgrade of one in use is (an admin may want a backup).
    new = found.legacy_version is None and not found.revisions
    level = logging.DEBUG if new else logging.INFO
    log.log(level, "upgrading the database's schema (%s) to %s", found.describe(), head)
    config = _alembic_config(connection)
    if found.legacy_version is not None and not found.revisions:
        _finish_legacy_upgrade(connection, found.legacy_version)
        command.stamp(config, BASELINE)
    command.upgrade(config, "head")


def _status(connection: Connection) -> SchemaStatus:
    return _status_of(_find(connection), _scripts())


def _find(connection: Connection) -> _Found:
    legacy_version = None
    if sa.inspect(connection).has_table("schema_version"):
        rows = connection.execute(sa.text("SELECT version FROM schema_version")).scalars()
        legacy_version = next(iter(rows), 0)
    revisions = MigrationContext.configure(connection).get_current_heads()
    return _Found(legacy_version=legacy_version, revisions=tuple(revisions))


def _status_of(found: _Found, scripts: ScriptDirectory) -> SchemaStatus:
    if found.revisions:
        known = {script.revision for script in scripts.walk_revisions()}
        if not known.issuperset(found.revisions):
            return SchemaStatus.NEWER
        current = found.revisions == (scripts.get_current_head(),)
        return SchemaStatus.CURRENT if current else SchemaStatus.OUTDATED
    if found.legacy_version is not None and found.legacy_version > len(MIGRATIONS):
        return SchemaStatus.NEWER
    return SchemaStatus.OUTDATED


def _newer_than_us(found: _Found) -> str:
    return (
        f"the database's schema ({found.describe()}) is newer than this rewardbot's "
        f"({_scripts().get_current_head()}): upgrade rewardbot"
    )


@functools.cache
def _scripts() -> ScriptDirectory:
    # The shipped history, read once: it does not change while rewardbot runs.
    return ScriptDirectory(str(MIGRATIONS_DIRECTORY))


def _alembic_config(connection: Connection) -> Config:
    """Alembic's configuration, made here instead of read from an ``alembic.ini``: the history
    shipped in this package, run on ``connection`` (``env.py`` picks it up)."""
    config = Config()
    # The option is read through ConfigParser, which takes "%" for interpolation.
    config.set_main_option("script_location", str(MIGRATIONS_DIRECTORY).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def _finish_legacy_upgrade(connection: Connection, version: int) -> None:
    """Take a file from before Alembic from legacy ``version`` to the last one, which the
    baseline revision describes, keeping every row."""
    for statement in _legacy_statements(version):
        connection.exec_driver_sql(statement)
    connection.execute(sa.text("DELETE FROM schema_version"))
    connection.execute(
        sa.text("INSERT INTO schema_version (version) VALUES (:version)"),
        {"version": ADOPTED_LEGACY_VERSION},
    )


def _legacy_statements(version: int) -> Iterator[str]:
    """The statements that take a legacy file from ``version`` to the last legacy version."""
    for script in MIGRATIONS[version:]:
        yield from filter(str.strip, script.split(";"))
