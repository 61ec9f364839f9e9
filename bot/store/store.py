"""The one object callers use for all of rewardbot's durable state."""

from __future__ import annotations

from bot.store.audit import AuditLog
from bot.store.email_changes import EmailChanges
from bot.store.jobs import JobQueue
from bot.store.orders import OrderSends
from bot.store.pacing import Pacing
from bot.store.requests import RequestStore
from bot.store.transitions import Transitions
from bot.store.wakeups import JobWakeups


class Store(
    RequestStore,
    Transitions,
    JobQueue,
    JobWakeups,
    OrderSends,
    EmailChanges,
    AuditLog,
    Pacing,
):
    """All reads and writes of rewardbot's database, over one shared connection
    (:class:`~bot.store.base.StoreBase`); each base class is one concern's part."""
