"""Status changes of reward requests.

Status changes happen only here, each a guarded ``UPDATE ... WHERE id=? AND status=?`` that
reports whether it won; its audit event and the jobs it makes needed are written in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.domain import TRANSITIONS, BudgetLimit, RewardRequest, Status, is_announced
from bot.store.audit import insert_event
from bot.store.base import StoreBase
from bot.store.budgets import check_budget
from bot.store.jobs import Job, JobKind, insert_job, require_current_claim
from bot.store.requests import row_to_request
from bot.store.sql import Connection, now_timestamp, timestamp

# Columns a transition may set alongside the status.
_TRANSITION_COLUMNS = frozenset(
    {
        "idempotency_key",
        "provider_order_id",
        "first_approved_by",
        "decided_by",
        "decision_reason",
        "failure_reason",
        "charged_amount",
        "charged_currency",
        "recipient_name",
        "recipient_email",
        "delivery_started_at",
        "cancel_before",
        "order_key",
        "order_owner",
        "delivery_claim",
    }
)


@dataclass(frozen=True)
class Change:
    """One guarded status change for :meth:`Store.transition_all`."""

    request_id: int
    from_: Status
    to: Status
    detail: dict[str, Any] = field(default_factory=dict)
    then: tuple[JobKind, ...] = ()
    then_at: datetime | None = None
    # The request the ``then`` jobs are queued for, if not this one: the work on a shared
    # provider order is all queued on its owner, so it runs one job at a time.
    then_for: int | None = None
    # Columns set in the same statement (see ``_TRANSITION_COLUMNS``).
    columns: Mapping[str, str | int | None] = field(default_factory=dict)


class _LostRace(Exception):
    """A change of a batch lost its race: the whole transaction is rolled back."""


class Transitions(StoreBase):
    """Moving requests from one status to the next, whoever races them."""

    async def transition(
        self,
        request_id: int,
        from_: Status,
        to: Status,
        actor: str,
        *,
        detail: Mapping[str, Any] | None = None,
        then: Sequence[JobKind] = (),
        fence: Job | None = None,
        **columns: str | None,
    ) -> bool:
        """Move the request from ``from_`` to ``to`` if it is still in ``from_``.

        Returns whether this call won. ``columns`` are set in the same statement, so whoever
        wins the race also owns what is written with it (the decider, the idempotency key...).
        In the same transaction, the change is queued for announcement in Slack (unless it is
        a quiet one) and the ``then`` jobs are queued: a crash cannot separate them. (Changes
        of several requests at once, scheduled jobs and budget re-reservation:
        :meth:`transition_all`.)
        """
        change = Change(request_id, from_, to, dict(detail or {}), tuple(then), columns=columns)
        return await self.transition_all([change], actor, fence=fence)

    async def transition_all(
        self,
        changes: Sequence[Change],
        actor: str,
        *,
        reserve: Sequence[BudgetLimit] = (),
        fence: Job | None = None,
    ) -> bool:
        """Make every change or none (see :meth:`transition`): a batch of requests decided
        together never ends up half decided, whatever decision races with it. A change's
        ``then`` jobs run at its ``then_at``, if given. With ``reserve``, the requests' budget
        amounts are checked against those limits in the same transaction (a retry re-reserves
        what a failure released); raises :class:`OverBudget` if they no longer fit. With
        ``fence`` (a job's claim), raises :class:`LeaseLost` unless that claim is current."""
        for change in changes:
            if change.to not in TRANSITIONS[change.from_]:
                raise ValueError(f"{change.from_} → {change.to} is not an allowed transition")
            unknown = set(change.columns) - _TRANSITION_COLUMNS
            if unknown:
                raise ValueError(f"transition cannot set {sorted(unknown)}")
        now = now_timestamp()
        try:
            async with self._transaction() as db:
                await require_current_claim(db, fence)
                if reserve:
                    await _reserve_again(db, changes, reserve)
                for change in changes:
                    if not await _apply(db, change, actor, now):
                        raise _LostRace  # rolls the whole transaction back
        except _LostRace:
            return False
        self._jobs_queued()
        return True


async def _reserve_again(
    db: Connection, changes: Sequence[Change], limits: Sequence[BudgetLimit]
) -> None:
    """Check the budgets again for the requests still in their change's ``from_`` (the others
    lose their race anyway)."""
    current: list[RewardRequest] = []
    for change in changes:
        found = await db.rows("SELECT * FROM reward_requests WHERE id = :id", id=change.request_id)
        if found and (request := row_to_request(found[0])).status is change.from_:
            current.append(request)
    if current:
        for limit in limits:
            await check_budget(db, current, limit)


async def _apply(db: Connection, change: Change, actor: str, now: str) -> bool:
    """One guarded status change, its audit event and its jobs; whether it won."""
    # Only names from _TRANSITION_COLUMNS get here: each is its own parameter's name.
    assignments = "".join(f", {name} = :{name}" for name in change.columns)
    changed = await db.run(
        f"UPDATE reward_requests SET status = :to, updated_at = :now{assignments} "  # noqa: S608
        "WHERE id = :id AND status = :from_status",
        to=change.to,
        now=now,
        id=change.request_id,
        from_status=change.from_,
        **change.columns,
    )
    if changed != 1:
        return False
    request_id, from_, to = change.request_id, change.from_, change.to
    await insert_event(db, request_id, "transition", from_, to, actor, change.detail, now)
    if is_announced(from_, to):
        await insert_job(db, JobKind.NOTIFY, request_id, {"status": to, "from": from_}, now)
    run_after = timestamp(change.then_at) if change.then_at else None
    for kind in change.then:
        owner = change.then_for or request_id
        await insert_job(db, kind, owner, {}, now, run_after=run_after)
    return True
