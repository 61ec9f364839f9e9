"""Reward requests: storing a submission (its budget checked in the same transaction) and
reading requests back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from bot.domain import BudgetLimit, Money, NewRewardRequest, RewardRequest, Status
from bot.errors import RequestNotFound
from bot.store.audit import insert_event
from bot.store.base import StoreBase
from bot.store.budgets import check_budget
from bot.store.jobs import JobKind, insert_job
from bot.store.sql import Connection, Row, now_timestamp, optional_datetime, timestamp


class RequestStore(StoreBase):
    """Creating reward requests and finding them."""

    async def create_request(
        self,
        new: NewRewardRequest,
        submission_key: str,
        *,
        limits: Sequence[BudgetLimit] = (),
        scheduled: Mapping[JobKind, datetime] | None = None,
    ) -> tuple[RewardRequest, bool]:
        """One request: see :meth:`create_requests`."""
        stored, is_new = await self.create_requests(
            [new], submission_key, limits=limits, scheduled=scheduled
        )
        return stored[0], is_new

    async def create_requests(
        self,
        news: Sequence[NewRewardRequest],
        submission_key: str,
        *,
        limits: Sequence[BudgetLimit] = (),
        scheduled: Mapping[JobKind, datetime] | None = None,
    ) -> tuple[list[RewardRequest], bool]:
        """Store the requests of one submission, all or none; returns them and whether they
        are new. A second submission with the same ``submission_key`` returns the first one's.

        Several requests (one per recipient) form a batch led by the first: one announcement,
        one decision. Storing reserves their budget amounts, which count against each of
        ``limits`` until a request ends without a purchase; raises :class:`OverBudget` if
        they do not all fit. ``scheduled`` jobs (reminder, expiry) are queued for the first.
        """
        now = now_timestamp()
        async with self._transaction() as db:
            # Checked inside the write transaction: two identical submissions cannot both
            # insert, and two requests cannot both spend the last of a budget.
            await db.lock(f"submission {submission_key}")
            found = await db.rows(
                "SELECT id FROM reward_requests WHERE submission_key = :key", key=submission_key
            )
            existing = int(found[0]["id"]) if found else None
            if existing is None:
                for limit in limits:
                    await check_budget(db, news, limit)
                head = await _insert_request(db, news[0], submission_key, now, None)
                for number, new in enumerate(news[1:], start=2):
                    await _insert_request(db, new, f"{submission_key}#{number}", now, head)
                if len(news) > 1:
                    await db.run(
                        "UPDATE reward_requests SET batch_id = :head WHERE id = :head", head=head
                    )
                for kind, when in (scheduled or {}).items():
                    await insert_job(db, kind, head, {}, now, run_after=timestamp(when))
        if existing is not None:
            return await self.batch(await self.get(existing)), False
        self._jobs_queued()
        return await self.batch(await self.get(head)), True

    async def get(self, request_id: int) -> RewardRequest:
        rows = await self._fetch("SELECT * FROM reward_requests WHERE id = :id", id=request_id)
        if not rows:
            raise RequestNotFound(f"There is no reward request #{request_id}.")
        return row_to_request(rows[0])

    async def batch(self, request: RewardRequest) -> list[RewardRequest]:
        """The requests submitted together with ``request`` (itself included), first first."""
        if request.batch_id is None:
            return [request]
        return await self._requests(
            "SELECT * FROM reward_requests WHERE batch_id = :batch ORDER BY id",
            batch=request.batch_id,
        )

    async def orders_owned_by(self, owner_id: int) -> list[list[RewardRequest]]:
        """The unfinished (approved or ordering) requests whose orders ``owner_id``'s ``fulfil``
        job places, one list per provider order (requests sharing one come together), in
        order."""
        requests = await self._requests(
            "SELECT * FROM reward_requests "
            "WHERE (order_owner = :owner OR (order_owner IS NULL AND id = :owner)) "
            "AND status IN :statuses ORDER BY id",
            owner=owner_id,
            statuses=(Status.APPROVED, Status.ORDERING),
        )
        orders: dict[str | None, list[RewardRequest]] = {}
        for request in requests:
            orders.setdefault(request.order_key or request.idempotency_key, []).append(request)
        return list(orders.values())

    async def requests_with_order(
        self, provider: str, provider_order_id: str
    ) -> list[RewardRequest]:
        """The requests a provider order was placed for (several if it is shared), in order."""
        return await self._requests(
            "SELECT * FROM reward_requests WHERE provider = :provider "
            "AND provider_order_id = :order_id ORDER BY id",
            provider=provider,
            order_id=provider_order_id,
        )

    async def requests_created(self, since: datetime, until: datetime) -> list[RewardRequest]:
        """Requests made at or after ``since`` and before ``until``, oldest first."""
        return await self._requests(
            "SELECT * FROM reward_requests WHERE created_at >= :since AND created_at < :until "
            "ORDER BY id",
            since=timestamp(since),
            until=timestamp(until),
        )

    async def recent_requests_by(self, requester_id: str, limit: int) -> list[RewardRequest]:
        """The requester's latest requests, newest first."""
        return await self._requests(
            "SELECT * FROM reward_requests WHERE requester_id = :requester "
            "ORDER BY id DESC LIMIT :limit",
            requester=requester_id,
            limit=limit,
        )

    async def requests_budgeted_in(self, month: str) -> list[RewardRequest]:
        """Requests counted against budgets of ``month`` (``2026-11``), released ones included."""
        return await self._requests(
            "SELECT * FROM reward_requests WHERE budget_month = :month ORDER BY id", month=month
        )

    async def requests_in(self, statuses: frozenset[Status]) -> list[RewardRequest]:
        return await self._requests(
            "SELECT * FROM reward_requests WHERE status IN :statuses ORDER BY id",
            statuses=tuple(statuses),
        )

    async def count_by_status(self) -> dict[Status, int]:
        """How many requests are in each status (statuses no request is in are left out)."""
        rows = await self._fetch(
            "SELECT status, COUNT(*) AS requests FROM reward_requests GROUP BY status"
        )
        return {Status(row["status"]): int(row["requests"]) for row in rows}

    async def _requests(self, sql: str, **parameters: object) -> list[RewardRequest]:
        return [row_to_request(row) for row in await self._fetch(sql, **parameters)]


async def _insert_request(
    db: Connection,
    new: NewRewardRequest,
    submission_key: str,
    now: str,
    batch_id: int | None,
) -> int:
    """The new request and its audit event, in the caller's transaction, and its
    announcement unless it joins a batch (the batch's first request announces them all)."""
    budget = new.budget_amount
    inserted = await db.rows(
        """INSERT INTO reward_requests (requester_id, recipient_id, origin_channel_id,
               amount, currency, provider, product_id, product_name, message, status,
               submission_key, team, approvals_required, budget_amount, budget_currency,
               budget_month, deliver_at, batch_id, created_at, updated_at)
           VALUES (:requester_id, :recipient_id, :origin_channel_id, :amount, :currency,
               :provider, :product_id, :product_name, :message, :status, :submission_key,
               :team, :approvals_required, :budget_amount, :budget_currency, :budget_month,
               :deliver_at, :batch_id, :now, :now)
           RETURNING id""",
        requester_id=new.requester_id,
        recipient_id=new.recipient_id,
        origin_channel_id=new.origin_channel_id,
        amount=str(new.face_value.amount),
        currency=new.face_value.currency,
        provider=new.provider,
        product_id=new.product_id,
        product_name=new.product_name,
        message=new.message,
        status=Status.PENDING_APPROVAL,
        submission_key=submission_key,
        team=new.team,
        approvals_required=new.approvals_required,
        budget_amount=str(budget.amount) if budget else None,
        budget_currency=budget.currency if budget else None,
        budget_month=new.budget_month,
        deliver_at=timestamp(new.deliver_at) if new.deliver_at else None,
        batch_id=batch_id,
        now=now,
    )
    request_id = int(inserted[0]["id"])
    await insert_event(
        db,
        request_id,
        "created",
        None,
        Status.PENDING_APPROVAL,
        new.requester_id,
        {"team": new.team, "approvals_required": new.approvals_required, "batch": batch_id},
        now,
    )
    if batch_id is None:
        await insert_job(db, JobKind.NOTIFY, request_id, {"status": Status.PENDING_APPROVAL}, now)
    return request_id


def row_to_request(row: Row) -> RewardRequest:
    return RewardRequest(
        id=row["id"],
        requester_id=row["requester_id"],
        recipient_id=row["recipient_id"],
        origin_channel_id=row["origin_channel_id"],
        face_value=Money.stored(Decimal(row["amount"]), row["currency"]),
        provider=row["provider"],
        product_id=row["product_id"],
        product_name=row["product_name"],
        message=row["message"],
        status=Status(row["status"]),
        idempotency_key=row["idempotency_key"],
        provider_order_id=row["provider_order_id"],
        charged=_money(row["charged_amount"], row["charged_currency"]),
        team=row["team"],
        approvals_required=row["approvals_required"],
        budget_amount=_money(row["budget_amount"], row["budget_currency"]),
        budget_month=row["budget_month"],
        first_approved_by=row["first_approved_by"],
        summary_permalink=row["summary_permalink"],
        deliver_at=optional_datetime(row["deliver_at"]),
        batch_id=row["batch_id"],
        order_key=row["order_key"],
        order_owner=row["order_owner"],
        cancel_before=optional_datetime(row["cancel_before"]),
        decided_by=row["decided_by"],
        decision_reason=row["decision_reason"],
        failure_reason=row["failure_reason"],
        summary_channel=row["summary_channel"],
        summary_ts=row["summary_ts"],
        recipient_name=row["recipient_name"],
        recipient_email=row["recipient_email"],
        delivery_started_at=optional_datetime(row["delivery_started_at"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


def _money(amount: str | None, currency: str | None) -> Money | None:
    if amount is None or currency is None:
        return None
    return Money.stored(Decimal(amount), currency)
