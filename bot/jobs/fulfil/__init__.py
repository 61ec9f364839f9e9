"""The ``fulfil`` job: approved requests through ordering, polling and delivery.

A job carries one provider order: one request's, or one shared by several requests of a bulk
reward. Each step is persisted before the next side effect, so the job can be run again after
a crash at any point, by this process or another: the idempotency key stored at approval makes
a replayed order the same order, every send of it is recorded first (``order_sends``), a
stored order id is looked up instead of re-sent, and each recipient's DM is checked before
their delivery is sent again. Every side effect is fenced by the job's claim: a run that lost
it stops (:class:`~bot.store.LeaseLost`) before its next provider call, DM or settlement.

Nothing waits in the job: a pending order, a provider that is down and a rate limit all put
the job back to run later (:class:`~bot.jobs.runner.RunLater` or a retry with backoff), so one stuck
order never holds a slot that another reward needs.

The steps, in order: :mod:`~bot.jobs.fulfil.job` runs them; :mod:`~bot.jobs.fulfil.ordering`
claims the requests and places the order (or looks it up), built by
:mod:`~bot.jobs.fulfil.bodies`; :mod:`~bot.jobs.fulfil.parts` finds each recipient's card in
it; :mod:`~bot.jobs.fulfil.delivery` DMs it; :mod:`~bot.jobs.fulfil.settle` ends requests
that cannot be delivered.
"""

from bot.jobs.fulfil.job import Fulfillment

__all__ = ["Fulfillment"]
