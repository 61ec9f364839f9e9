"""Monthly budgets: what a month's live requests hold of a limit, and the check that new ones
fit, made in the write transaction that stores (or revives) them."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from bot.domain import RELEASES_BUDGET, BudgetLimit, Money, NewRewardRequest, month_title
from bot.errors import OverBudget
from bot.store.sql import Connection


async def check_budget(
    db: Connection, news: Sequence[NewRewardRequest], limit: BudgetLimit
) -> None:
    """All of ``news`` (one requester, one month) must fit in what ``limit`` has left; raises
    :class:`OverBudget` if they do not."""
    month_key = news[0].budget_month
    assert month_key is not None
    amount = sum((n.budget_amount.amount for n in news if n.budget_amount), Decimal(0))
    used = await _reserved(db, month_key, limit, news[0].requester_id)
    if used + amount <= limit.limit.amount:
        return
    left = Money(amount=max(limit.limit.amount - used, Decimal(0)), currency=limit.limit.currency)
    raise OverBudget(
        f"This would take {limit.owner} {month_title(month_key)} rewards over budget: "
        f"{left} left of {limit.limit}."
    )


async def _reserved(db: Connection, month: str, limit: BudgetLimit, requester_id: str) -> Decimal:
    """What the month's live requests hold of ``limit`` (summed as Decimal, not in SQL)."""
    who, value = ("team", limit.team) if limit.team else ("requester_id", requester_id)
    # Two processes storing requests of one budget at once must not both see it unspent.
    await db.lock(f"budget {month} {who} {value} {limit.limit.currency}")
    rows = await db.rows(
        "SELECT budget_amount FROM reward_requests WHERE budget_month = :month "  # noqa: S608
        f"AND {who} = :who AND budget_currency = :currency AND status NOT IN :released",
        month=month,
        who=value,
        currency=limit.limit.currency,
        released=tuple(RELEASES_BUDGET),
    )
    return sum((Decimal(row["budget_amount"]) for row in rows), Decimal(0))
