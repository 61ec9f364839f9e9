"""Durable state in SQLite: reward requests, the Slack messages that show them, and the audit trail.

Callers use one object, :class:`Store`, composed of one part per concern:

- ``base``: the shared connection, its lock and transactions; opening and closing;
- ``schema``: the upgrade to this rewardbot's schema, and the adoption of older SQLite files;
- ``migrations``: the schema's Alembic history, one for SQLite and PostgreSQL;
- ``sql``: timestamps as stored, and reading rows safely;
- ``requests``: storing a submission and reading requests back;
- ``budgets``: the monthly budget check, made in the transaction that stores a request;
- ``transitions``: guarded status changes, with their events and jobs in one transaction;
- ``jobs``: the durable job queue, its claims, leases and fencing;
- ``orders``: sends of provider orders and starts of delivery DMs, recorded before they happen;
- ``email_changes``: resends of a delivered card and the address changes that redirect it;
- ``audit``: the events of a request, and the Slack messages that show it;
- ``store``: :class:`Store` itself.
"""

from bot.store.audit import SYSTEM_ACTOR, ApprovalCard, Event
from bot.store.email_changes import EmailChange, EmailChangeOutcome, mask_email
from bot.store.jobs import Job, JobKind, LeaseLost
from bot.store.orders import DeliveryStart
from bot.store.store import Store
from bot.store.transitions import Change

__all__ = [
    "SYSTEM_ACTOR",
    "ApprovalCard",
    "Change",
    "DeliveryStart",
    "EmailChange",
    "EmailChangeOutcome",
    "Event",
    "Job",
    "JobKind",
    "LeaseLost",
    "Store",
    "mask_email",
]
