"""Monthly budgets: what a month's live requests hold of a limit, and the check that new ones
fit, made in the write transaction that stores (or revives) them."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import aiosqlite

from bot.domain import RELEASES_BUDGET, BudgetLimit, Money, NewRewardRequest, month_title
from bot.errors import OverBudget
from bot.store.sql import read_rows


async def check_budget(
    db: aiosqlite.Connection, news: Sequence[NewRewardRequest], limit: BudgetLimit
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


async def _reserved(
    db: aiosqlite.Connection, month: str, limit: BudgetLimit, requester_id: str
) -> Decimal:
    """What the month's live requests hold of ``limit`` (summed as Decimal, not in SQL)."""
    who, value = ("team", limit.team) if limit.team else ("requester_id", requester_id)
    released = ",".join("?" * len(RELEASES_BUDGET))
    rows = await read_rows(
        db,
        f"SELECT budget_amount FROM reward_requests WHERE budget_month = ? AND {who} = ? "  # noqa: S608
        f"AND budget_currency = ? AND status NOT IN ({released})",
        (month, value, limit.limit.currency, *RELEASES_BUDGET),
    )
    return sum((Decimal(row[0]) for row in rows), Decimal(0))
