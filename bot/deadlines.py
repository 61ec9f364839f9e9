"""The scheduled ``remind`` and ``expire`` jobs of a request waiting for a decision.

Both are queued with the request, to run at the times the policy gave; by then the request has
usually been decided, and the job does nothing.
"""

from __future__ import annotations

from bot import slack_views
from bot.domain import AWAITING_DECISION, Status
from bot.policy import Policy
from bot.slack_gateway import SLACK_FAILURES, SlackGateway
from bot.store import SYSTEM_ACTOR, Job, Store


class Deadlines:
    def __init__(self, store: Store, gateway: SlackGateway, policy: Policy) -> None:
        self._store = store
        self._gateway = gateway
        self._policy = policy

    async def remind(self, job: Job) -> None:
        """Nudge whoever can decide the request now: in the approvals channel's card thread,
        or by DM. Recorded in the audit trail once sent."""
        request = await self._store.get(job.request_id)
        if request.status not in AWAITING_DECISION:
            return
        deciders = await self._policy.deciders(request)
        text = slack_views.reminder(request, self._policy.rules.approvals.expire_after_hours)
        channel = self._policy.approvals_channel
        if channel is not None:
            cards = [
                c for c in await self._store.approval_cards(request.id) if c.approver_id == channel
            ]
            mentions = " ".join(f"<@{a}>" for a in deciders)
            for card in cards:
                await self._gateway.reply_to(card.channel, card.ts, f"{mentions} {text}")
        else:
            failures: list[Exception] = []
            for approver in deciders:
                try:
                    await self._gateway.dm(approver, text)
                except SLACK_FAILURES as exc:
                    failures.append(exc)
            if failures and len(failures) == len(deciders):
                raise failures[0]
        await self._store.record_event(
            request.id, "reminder", SYSTEM_ACTOR, {"approvers": deciders}
        )

    async def expire(self, job: Job) -> None:
        """End the request if nobody decided it in time (which releases its budget)."""
        request = await self._store.get(job.request_id)
        if request.status not in AWAITING_DECISION:
            return
        hours = self._policy.rules.approvals.expire_after_hours
        for status in AWAITING_DECISION:
            if await self._store.transition(
                request.id,
                status,
                Status.EXPIRED,
                SYSTEM_ACTOR,
                detail={"after_hours": hours},
            ):
                return
