"""Which handler runs each kind of job: the one map from :class:`JobKind` to its handler.

A new kind of job touches four places (docs/architecture.md, *Recipes*, has the whole list):

1. :class:`~bot.store.JobKind`, in the store, names it (the name is what the jobs table keeps);
2. :func:`handlers_by_kind`, here, says what runs it: a module of its own in ``bot/jobs/``;
3. ``Runtime.create`` (``bot/runtime.py``) builds that handler and passes it here;
4. if it is queued together with a status change, that change's ``then``
   (:class:`~bot.store.Change`) queues it in the same transaction.

Unless :data:`~bot.jobs.runner.DEFAULT_CONCURRENCY` and :data:`~bot.jobs.runner.DEFAULT_GIVE_UP`
say otherwise, it runs one job at a time and a failing one is retried forever.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.jobs.deadlines import Deadlines
from bot.jobs.fulfil import Fulfillment
from bot.jobs.notify import Notifier
from bot.jobs.resend import Redelivery
from bot.jobs.runner import JobHandler
from bot.store import JobKind


def handlers_by_kind(
    *,
    fulfillment: Fulfillment,
    notifier: Notifier,
    deadlines: Deadlines,
    redelivery: Redelivery,
) -> Mapping[JobKind, JobHandler]:
    """The handler of every kind of job, for :class:`~bot.jobs.runner.JobRunner`."""
    return {
        JobKind.FULFIL: fulfillment.run,
        JobKind.NOTIFY: notifier.run,
        JobKind.REMIND: deadlines.remind,
        JobKind.EXPIRE: deadlines.expire,
        JobKind.RESEND: redelivery.run,
    }
