"""The scheduled ``remind`` and ``expire`` jobs of a request waiting for a decision.

Both are queued with the request, to run at the times the policy gave; by then the request has
usually been decided, and the job does nothing.
"""

from __future__ import annotations

import logging

from bot.domain import AWAITING_DECISION, Status
from bot.policy.rules import Policy
from bot.slack.gateway import SLACK_FAILURES, SlackGateway
from bot.slack.messages import reminder
from bot.store import SYSTEM_ACTOR, Change, Job, Store

log = logging.getLogger(__name__)


class Deadlines:
    def __init__(self, store: Store, gateway: SlackGateway, policy: Policy) -> None:
        self._store = store
        self._gateway = gateway
        self._policy = policy

    async def remind(self, job: Job) -> None:
        """Nudge whoever can decide the request now: in the approvals channel's card thread,
        or by DM. The audit trail records who was reached; if nobody was, the job retries."""
        request = await self._store.get(job.request_id)
        if request.status not in AWAITING_DECISION:
            return
        deciders = await self._policy.batch_deciders(await self._store.batch(request))
        text = reminder(request, self._policy.expire_after_hours)
        reached: list[str] = []
        channel = self._policy.approvals_channel
        if channel is not None:
            cards = await self._store.approval_cards(request.id)
            for card in (c for c in cards if c.approver_id == channel):
                mentions = " ".join(f"<@{a}>" for a in deciders)
                await self._gateway.reply_to(card.channel, card.ts, f"{mentions} {text}")
                reached = deciders
        else:
            for approver in deciders:
                try:
                    await self._gateway.dm(approver, text)
                except SLACK_FAILURES as exc:
                    log.warning("could not remind %s of request %s: %r", approver, request.id, exc)
                else:
                    reached.append(approver)
        if not reached:
            raise RuntimeError(f"nobody could be reminded of request {request.id} yet")
        await self._store.record_event(request.id, "reminder", SYSTEM_ACTOR, {"approvers": reached})

    async def expire(self, job: Job) -> None:
        """End the request (every request of its batch) if nobody decided it in time, which
        releases its budget. A decision racing with this is re-read: a first approval just
        before does not keep it alive."""
        detail = {"after_hours": self._policy.expire_after_hours}
        while True:
            batch = await self._store.batch(await self._store.get(job.request_id))
            if any(m.status not in AWAITING_DECISION for m in batch):
                return
            changes = [Change(m.id, m.status, Status.EXPIRED, detail) for m in batch]
            if await self._store.transition_all(changes, SYSTEM_ACTOR):
                return
