"""Approvers decide a request (with its whole batch): approve, in one or two steps, or reject."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bot import clock
from bot.domain import AWAITING_DECISION, REASON_MAX_CHARS, RewardRequest, Status
from bot.errors import NotAllowed
from bot.metrics import Metrics
from bot.policy.rules import Policy
from bot.rewards.orders import (
    new_idempotency_key,
    order_time,
    owns_its_order,
    shared_orders,
)
from bot.rewards.refusals import already_decided, decided_request, refuse_unless_allowed
from bot.store import Change, JobKind, Store
from providers.base import Provider


class Decisions:
    """Records decisions; the approval that completes a request queues its fulfilment."""

    def __init__(
        self,
        store: Store,
        policy: Policy,
        providers: Mapping[str, Provider],
        metrics: Metrics,
    ) -> None:
        """``metrics``: where the wait for a final decision is observed."""
        self._store = store
        self._policy = policy
        self._providers = providers
        self._metrics = metrics

    async def decidable(self, request_id: int, actor: str) -> RewardRequest:
        """The request, if ``actor`` may decide it now. Raises NotAllowed or AlreadyDecided."""
        request = await self._store.get(request_id)
        await refuse_unless_allowed(self._policy, request, actor)
        if request.status not in AWAITING_DECISION:
            raise already_decided(request, actor)
        return request

    async def approve(self, request_id: int, actor: str) -> RewardRequest:
        """Record an approval of the request and its whole batch. The last approval needed
        queues the fulfilment in the same transaction; a first of two waits for a different
        approver."""
        return await self._decide_batch(
            request_id, actor, lambda batch: self._approvals(batch, actor)
        )

    async def reject(self, request_id: int, actor: str, reason: str | None) -> RewardRequest:
        """Record the rejection of the request and its whole batch."""
        reason = (reason or "").strip()[:REASON_MAX_CHARS] or None
        return await self._decide_batch(
            request_id,
            actor,
            lambda batch: [
                Change(
                    member.id,
                    member.status,
                    Status.REJECTED,
                    {"reason": reason} if reason else {},
                    columns={"decided_by": actor, "decision_reason": reason},
                )
                for member in batch
            ],
        )

    def _approvals(self, batch: list[RewardRequest], actor: str) -> list[Change]:
        if batch[0].status is Status.PENDING_APPROVAL and batch[0].approvals_required > 1:
            return [
                Change(
                    member.id,
                    member.status,
                    Status.AWAITING_SECOND_APPROVAL,
                    {"approval": "first of two"},
                    columns={"first_approved_by": actor},
                )
                for member in batch
            ]
        provider = self._providers.get(batch[0].provider)
        shared = shared_orders(batch, provider)
        return [
            Change(
                member.id,
                member.status,
                Status.APPROVED,
                {"approval": "second of two" if member.approvals_required > 1 else "only"},
                # A shared order's fulfilment is queued once, on its owner.
                then=(JobKind.FULFIL,) if owns_its_order(member, shared) else (),
                then_at=order_time(member, self._providers.get(member.provider)),
                columns={
                    "decided_by": actor,
                    # Created and stored with the approval, before any provider call, so
                    # every retry of this order (after a timeout, a crash, a restart)
                    # reuses it; a shared order's key is its ``order_key``.
                    "idempotency_key": new_idempotency_key(member.id),
                    **shared.get(member.id, {}),
                },
            )
            for member in batch
        ]

    async def _decide_batch(
        self,
        request_id: int,
        actor: str,
        changes_for: Callable[[list[RewardRequest]], list[Change]],
    ) -> RewardRequest:
        """Decide a request and the rest of its batch in one transaction. The actor must be
        allowed to decide every one of them; a decision that races with another one (or with
        a cancellation or expiry) changes all of them or none."""
        request = await self.decidable(request_id, actor)
        batch = await self._store.batch(request)
        for member in batch:
            if member.status is not request.status:
                raise already_decided(member, actor)
            if member.id != request.id:
                await refuse_unless_allowed(self._policy, member, actor)
        changes = changes_for(batch)
        first_of_two = changes[0].to is Status.AWAITING_SECOND_APPROVAL
        second = await self._policy.batch_second_deciders(batch) if first_of_two else []
        if first_of_two and len(batch) > 1 and not [a for a in second if a != actor]:
            raise NotAllowed(
                "These rewards need two approvals and only you can give the second, so "
                "another approver must give the first."
            )
        won = await self._store.transition_all(changes, actor)
        if won:
            self._observe_wait(batch, changes[0].to)
        return await decided_request(self._store, request.id, actor, won)

    def _observe_wait(self, batch: list[RewardRequest], decision: Status) -> None:
        """How long each request waited for its final decision (a first of two is not)."""
        if decision not in (Status.APPROVED, Status.REJECTED):
            return
        now = clock.now()
        for member in batch:
            waited = (now - member.created_at).total_seconds()
            self._metrics.approval_wait.labels(decision.value).observe(waited)
