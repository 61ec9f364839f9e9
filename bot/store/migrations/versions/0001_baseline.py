"""The schema as legacy version 11 (the last of ``bot.store.schema.MIGRATIONS``) left it.

Column for column, in the same order, so a fresh database and an adopted SQLite file are
alike. Ids never repeat (``sqlite_autoincrement``: SQLite's AUTOINCREMENT, as before; a sequence
on PostgreSQL); timestamps are ISO text in UTC and money is decimal text, so both compare and
read back the same on either database; flags are INTEGER 0 or 1.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None

# A change still waiting for its recipient (neither confirmed, declined nor expired).
WAITING = sa.text("outcome IS NULL")


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


def _request_id() -> sa.Column[int]:
    return sa.Column("request_id", sa.Integer, sa.ForeignKey("reward_requests.id"), nullable=False)


def _required(name: str) -> sa.Column[str]:
    return sa.Column(name, sa.Text, nullable=False)


def _optional(name: str) -> sa.Column[str]:
    return sa.Column(name, sa.Text)


def _counter(name: str, default: int = 0) -> sa.Column[int]:
    return sa.Column(name, sa.Integer, nullable=False, server_default=sa.text(str(default)))


def _create_reward_requests() -> None:
    op.create_table(
        "reward_requests",
        _id(),
        _required("requester_id"),
        _required("recipient_id"),
        _required("origin_channel_id"),
        _required("amount"),
        _required("currency"),
        _required("provider"),
        _required("product_id"),
        _required("product_name"),
        _required("message"),
        _required("status"),
        sa.Column("idempotency_key", sa.Text, unique=True),
        _optional("provider_order_id"),
        _optional("charged_amount"),
        _optional("charged_currency"),
        _optional("decided_by"),
        _optional("decision_reason"),
        _optional("failure_reason"),
        _optional("summary_channel"),
        _optional("summary_ts"),
        _required("created_at"),
        _required("updated_at"),
        _optional("submission_key"),
        _optional("recipient_name"),
        _optional("recipient_email"),
        _optional("delivery_started_at"),
        _optional("team"),
        _counter("approvals_required", default=1),
        _optional("first_approved_by"),
        _optional("budget_amount"),
        _optional("budget_currency"),
        _optional("budget_month"),
        _optional("summary_permalink"),
        _optional("deliver_at"),
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("reward_requests.id")),
        _optional("cancel_before"),
        _optional("order_key"),
        sa.Column("order_owner", sa.Integer, sa.ForeignKey("reward_requests.id")),
        _optional("delivery_claim"),
        sqlite_autoincrement=True,
    )


def _index_reward_requests() -> None:
    for name, columns in (
        ("status", ["status"]),
        ("budget", ["budget_month", "team"]),
        ("created", ["created_at"]),
        ("batch", ["batch_id"]),
        ("order_owner", ["order_owner"]),
        ("provider_order", ["provider", "provider_order_id"]),
    ):
        op.create_index(f"reward_requests_{name}", "reward_requests", columns)
    # A resubmitted modal (Slack's view id) is stored once.
    op.create_index(
        "reward_requests_submission", "reward_requests", ["submission_key"], unique=True
    )


def _create_approval_cards() -> None:
    op.create_table(
        "approval_cards",
        _request_id(),
        _required("approver_id"),
        _required("channel"),
        _required("ts"),
        sa.PrimaryKeyConstraint("request_id", "approver_id"),
    )


def _create_events() -> None:
    op.create_table(
        "events",
        _id(),
        _request_id(),
        _required("kind"),
        _optional("from_status"),
        _optional("to_status"),
        _required("actor"),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
        _required("at"),
        sqlite_autoincrement=True,
    )
    op.create_index("events_request", "events", ["request_id", "id"])


def _create_jobs() -> None:
    op.create_table(
        "jobs",
        _id(),
        _required("kind"),
        _request_id(),
        sa.Column("payload", sa.Text, nullable=False, server_default="{}"),
        _counter("attempts"),
        _required("run_after"),
        _optional("lease_owner"),
        _optional("lease_expires"),
        _optional("last_error"),
        _required("created_at"),
        _optional("done_at"),
        _counter("waiting"),
        _optional("waited_from"),
        _counter("nudged"),
        sqlite_autoincrement=True,
    )
    op.create_index("jobs_open", "jobs", ["done_at", "request_id", "id"])


def _create_order_sends() -> None:
    op.create_table(
        "order_sends",
        sa.Column("order_key", sa.Text, primary_key=True),
        _required("provider"),
        _optional("fingerprint"),
        _required("first_sent_at"),
        _required("last_sent_at"),
        _counter("sends"),
        _optional("unsettled_since"),
        _counter("last_answered"),
    )


def _create_email_changes() -> None:
    op.create_table(
        "email_changes",
        _id(),
        _request_id(),
        _required("email"),
        _required("requested_by"),
        _required("requested_at"),
        _required("expires_at"),
        _optional("outcome"),
        _optional("decided_at"),
        _optional("decided_by"),
        sqlite_autoincrement=True,
    )
    op.create_index("email_changes_request", "email_changes", ["request_id"])
    # At most one change waiting for its recipient per request, whichever process proposes it.
    op.create_index(
        "email_changes_one_waiting",
        "email_changes",
        ["request_id"],
        unique=True,
        sqlite_where=WAITING,
        postgresql_where=WAITING,
    )


def upgrade() -> None:
    _create_reward_requests()
    _index_reward_requests()
    _create_approval_cards()
    _create_events()
    _create_jobs()
    _create_order_sends()
    _create_email_changes()


def downgrade() -> None:
    # Indexes go with their tables; the requests last, as every other table points at them.
    for table in ("email_changes", "order_sends", "jobs", "events", "approval_cards"):
        op.drop_table(table)
    op.drop_table("reward_requests")
