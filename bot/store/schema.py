"""The database schema: every version it has had, and the upgrade of a database through them.

Existing databases upgrade through :data:`MIGRATIONS`, so an entry, once released, never
changes; a new version is a new entry.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

# Append only: each entry migrates the schema from version N to N+1.
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


async def upgrade_schema(connection: AsyncConnection) -> None:
    """Bring the database to the latest version, in the caller's write transaction."""
    await connection.exec_driver_sql(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
    )
    rows = (await connection.exec_driver_sql("SELECT version FROM schema_version")).all()
    current = rows[0][0] if rows else 0
    if current > len(MIGRATIONS):
        raise RuntimeError(
            f"the database is at schema version {current}, newer than this rewardbot "
            f"({len(MIGRATIONS)}): upgrade rewardbot"
        )
    if not rows:
        await connection.exec_driver_sql("INSERT INTO schema_version (version) VALUES (0)")
    for script in MIGRATIONS[current:]:
        for statement in filter(str.strip, script.split(";")):
            await connection.exec_driver_sql(statement)
    await connection.exec_driver_sql(f"UPDATE schema_version SET version = {len(MIGRATIONS)}")  # noqa: S608


async def require_current_schema(connection: AsyncConnection) -> None:
    rows = (await connection.exec_driver_sql("SELECT version FROM schema_version")).all()
    version = rows[0][0] if rows else 0
    if version != len(MIGRATIONS):
        raise RuntimeError(
            f"the database is at schema version {version} and this rewardbot reads "
            f"version {len(MIGRATIONS)}: start this rewardbot once to upgrade it"
        )
