"""Reports over the stored requests: ``/reward report``, ``/reward status`` and
``rewardbot export``."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot.domain import RELEASES_BUDGET, Money, RewardRequest, Status, month_title
from bot.errors import RequestNotFound
from bot.policy.rules import Policy
from bot.slack.gateway import SLACK_FAILURES
from bot.slack.lines import event_line, next_step, request_headline, request_line, status_line
from bot.slack.text import escape
from bot.store import Event, Store

# Spent: a card was bought (or settled by hand). Everything else not released is reserved.
_SPENT = frozenset({Status.FULFILLED, Status.RESOLVED})
_NO_TEAM = "(no team)"


class TeamSpend(BaseModel):
    """One team's month: bought, held by requests still under way, and its budget."""

    model_config = ConfigDict(frozen=True)

    team: str
    spent: Money
    reserved: Money
    budget: Money | None

    @property
    def left(self) -> Money | None:
        if self.budget is None:
            return None
        left = self.budget.amount - self.spent.amount - self.reserved.amount
        return Money(amount=max(left, Decimal(0)), currency=self.budget.currency)

    def describe(self) -> str:
        line = (
            f"*{escape(self.team)}*: {self.spent} spent, {self.reserved} awaiting approval "
            "or delivery"
        )
        if self.budget is not None:
            line += f", {self.left} left of {self.budget}"
        return line


async def month_spend(store: Store, policy: Policy, month: str) -> list[TeamSpend]:
    """Every configured team's spend in ``month`` (and requests from people in no team)."""
    currency = policy.currency
    assert currency is not None
    spent: dict[str, Decimal] = {}
    reserved: dict[str, Decimal] = {}
    for request in await store.requests_budgeted_in(month):
        if request.status in RELEASES_BUDGET or request.budget_amount is None:
            continue
        bucket = spent if request.status in _SPENT else reserved
        team = request.team or _NO_TEAM
        bucket[team] = bucket.get(team, Decimal(0)) + request.budget_amount.amount
    configured = policy.team_names
    teams = [*configured, *(t for t in (*spent, *reserved) if t not in configured)]
    return [
        TeamSpend(
            team=team,
            spent=Money(amount=spent.get(team, Decimal(0)), currency=currency),
            reserved=Money(amount=reserved.get(team, Decimal(0)), currency=currency),
            budget=policy.team_budget(team),
        )
        for team in dict.fromkeys(teams)
    ]


async def budget_report(
    store: Store, policy: Policy, user_id: str, now: datetime | None = None
) -> str:
    """This month's spend per team against its budget, as mrkdwn for the asker alone."""
    try:
        allowed = await policy.is_approver(user_id)
    except SLACK_FAILURES:
        return "Could not check that you are an approver (Slack did not answer). Try again."
    if not allowed:
        return "Only approvers can see the budget report."
    if policy.currency is None:
        return "No budgets are configured: the approval policy names no currency or limits."
    month = policy.month_of(now or datetime.now(UTC))
    teams = await month_spend(store, policy, month)
    lines = [f"*Reward spend for {month_title(month)}* ({policy.timezone_name})"]
    lines += [f"• {team.describe()}" for team in teams]
    if not teams:
        lines.append("No teams are configured and nothing was requested this month.")
    return "\n".join(lines)


_RECENT = 10


async def status_report(store: Store, policy: Policy, user_id: str, argument: str) -> str:
    """``/reward status``: the asker's recent requests; ``/reward status 12``: one request's
    history, for its requester and approvers (a recipient is not told before the surprise)."""
    wanted = argument.strip().removeprefix("#")
    if not wanted:
        requests = await store.recent_requests_by(user_id, _RECENT)
        if not requests:
            return "You have not requested any rewards yet. Type `/reward` to send one."
        lines = [request_line(r) for r in requests]
        return "\n".join(
            ["*Your recent reward requests*", *lines, "Details: `/reward status <number>`."]
        )
    if not wanted.isdecimal() or len(wanted) > 18:
        return "Give a request number, like `/reward status 12`."
    hidden = f"There is no reward request #{wanted} that you can see."
    try:
        request = await store.get(int(wanted))
    except RequestNotFound:
        return hidden
    if user_id != request.requester_id:
        try:
            # The request's own approvers; a manager of another team sees nothing.
            approvers = await policy.reviewers(request)
            approvers += [p for p in (request.first_approved_by, request.decided_by) if p]
            allowed = user_id != request.recipient_id and user_id in approvers
        except SLACK_FAILURES:
            return "Could not check that you are an approver (Slack did not answer). Try again."
        if not allowed:
            return hidden
    events = await store.events(request.id)
    return "\n".join(
        [
            request_headline(request),
            status_line(request),
            *(event_line(e) for e in events),
            next_step(request),
        ]
    )


# -- export -------------------------------------------------------------------------------

EXPORT_FIELDS = (
    "id",
    "created_at",
    "status",
    "requester_id",
    "recipient_id",
    "team",
    "amount",
    "currency",
    "budget_amount",
    "budget_currency",
    "charged_amount",
    "charged_currency",
    "provider",
    "product_id",
    "product_name",
    "provider_order_id",
    "approvals_required",
    "first_approved_by",
    "decided_by",
    "decided_at",
    "decision_reason",
    "failure_reason",
    "delivered_at",
    "permalink",
)
# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def export_row(request: RewardRequest, events: Sequence[Event]) -> dict[str, Any]:
    """One request with its decisions, amounts and link; money as exact decimal strings."""

    def first_event_into(statuses: frozenset[Status]) -> str | None:
        found = next((e for e in events if e.to_status in statuses), None)
        return found.at.isoformat() if found else None

    return {
        "id": request.id,
        "created_at": request.created_at.isoformat(),
        "status": str(request.status),
        "requester_id": request.requester_id,
        "recipient_id": request.recipient_id,
        "team": request.team,
        "amount": str(request.face_value.amount),
        "currency": request.face_value.currency,
        "budget_amount": str(request.budget_amount.amount) if request.budget_amount else None,
        "budget_currency": request.budget_amount.currency if request.budget_amount else None,
        "charged_amount": str(request.charged.amount) if request.charged else None,
        "charged_currency": request.charged.currency if request.charged else None,
        "provider": request.provider,
        "product_id": request.product_id,
        "product_name": request.product_name,
        "provider_order_id": request.provider_order_id,
        "approvals_required": request.approvals_required,
        "first_approved_by": request.first_approved_by,
        "decided_by": request.decided_by,
        "decided_at": first_event_into(frozenset({Status.APPROVED, Status.REJECTED})),
        "decision_reason": request.decision_reason,
        "failure_reason": request.failure_reason,
        "delivered_at": first_event_into(frozenset({Status.FULFILLED})),
        "permalink": request.summary_permalink,
    }


async def export_requests(store: Store, since: datetime, until: datetime, fmt: str) -> str:
    """Requests made in ``[since, until)`` as CSV, or as JSON with their whole audit trail."""
    rows = []
    for request in await store.requests_created(since, until):
        events = await store.events(request.id)
        row = export_row(request, events)
        if fmt == "json":
            row["events"] = [
                {
                    "kind": e.kind,
                    "from_status": e.from_status,
                    "to_status": e.to_status,
                    "actor": e.actor,
                    "at": e.at.isoformat(),
                    "detail": e.detail,
                }
                for e in events
            ]
        rows.append(row)
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _inert(v) for k, v in row.items()})
    return out.getvalue()


def _inert(value: object) -> object:
    """Text that a spreadsheet would run as a formula is prefixed with a quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
