"""Durable state in SQLite or PostgreSQL: reward requests, the Slack messages that show them,
and the audit trail.

Callers use one object, :class:`Store`, composed of one part per concern:

- ``database``: ``REWARDBOT_DATABASE`` understood, and SQLAlchemy's engine for it;
- ``backends``: running statements on SQLite (one connection) or PostgreSQL (a pool);
- ``base``: the backend and its transactions; opening (upgrading first) and closing;
- ``schema``: the upgrade to this rewardbot's schema, and the adoption of older SQLite files;
- ``migrations``: the schema's Alembic history, one for SQLite and PostgreSQL;
- ``sql``: a transaction's connection (statements, locks), timestamps as stored;
- ``requests``: storing a submission and reading requests back;
- ``budgets``: the monthly budget check, made in the transaction that stores a request;
- ``transitions``: guarded status changes, with their events and jobs in one transaction;
- ``jobs``: the durable job queue, its claims, leases and fencing;
- ``wakeups``: every process's runner woken when any process queues a job (PostgreSQL);
- ``orders``: sends of provider orders and starts of delivery DMs, recorded before they happen;
- ``email_changes``: resends of a delivered card and the address changes that redirect it;
- ``audit``: the events of a request, and the Slack messages that show it;
- ``pacing``: turns at one pace for every process (a provider's rate limit, a Slack channel's);
- ``store``: :class:`Store` itself;
- ``copy``: every row of an installation copied into an empty database (``rewardbot copy-db``).
"""

from bot.store.audit import SYSTEM_ACTOR, ApprovalCard, Event
from bot.store.database import DATABASE_ERRORS, DatabaseUrl, database_problem
from bot.store.email_changes import EmailChange, EmailChangeOutcome, mask_email
from bot.store.jobs import Job, JobKind, LeaseLost
from bot.store.orders import DeliveryStart
from bot.store.store import Store
from bot.store.transitions import Change

__all__ = [
    "DATABASE_ERRORS",
    "SYSTEM_ACTOR",
    "ApprovalCard",
    "Change",
    "DatabaseUrl",
    "DeliveryStart",
    "EmailChange",
    "EmailChangeOutcome",
    "Event",
    "Job",
    "JobKind",
    "LeaseLost",
    "Store",
    "database_problem",
    "mask_email",
]
