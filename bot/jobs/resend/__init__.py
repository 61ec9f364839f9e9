"""Resend and recovery after delivery: the recipient asks for their card again, or an
approver corrects the address the provider emails it to.

A delivered card goes only where its recipient says. It is emailed to the address it was
ordered for (the recipient's Slack profile email) or to one they confirmed since, and the
recipient's own *Send it to me again* goes there. An approver starts a correction when the
recipient reports a wrong address, but any other address is only proposed
(:meth:`Store.propose_email_change`): the ``resend`` job asks the recipient, in a DM showing
it in full, to confirm it within :data:`~bot.jobs.resend.email_change.CONFIRM_HOURS` hours,
unless it is their Slack profile email now (Slack vouches for that one, as it did for the
order). Only a confirmation queues the provider's resend there, and only that resend replaces
the stored address (:meth:`Store.apply_email_change`). The requester hears of every proposal,
the approver of how it ended; each proposal, confirmation, refusal, expiry and resend is an
audit event, with the address masked.

Slack only asks: the listeners check who may and queue a durable ``resend`` job, touching
nothing but the database, and answer at once (the provider may take longer than Slack waits,
and a DM can fail). One resend a minute per person and request: the check and the queueing
are one transaction, so a double click resends once.

The card's secrets are never stored, so a resend reads them from the provider again and DMs
them to the recipient alone, exactly as the first delivery did.

:mod:`~bot.jobs.resend.job` takes what Slack asks and runs the ``resend`` job;
:mod:`~bot.jobs.resend.to_recipient` is the recipient's own resend,
:mod:`~bot.jobs.resend.email_change` the proposed address and its confirmation, and
:mod:`~bot.jobs.resend.steps` what both share.
"""

from bot.jobs.resend.job import Redelivery

__all__ = ["Redelivery"]
