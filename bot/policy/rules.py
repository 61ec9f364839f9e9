"""Who may do what, and what a request may cost: the policy file's rules over stored state.

Routing: a requester's request goes to the managers of their team; someone in no team, or a
team whose every manager is excluded (the requester or recipient themselves), goes to the
default approvers. Above ``second_approval_above`` a second, different approver must agree:
one of ``second_approvers`` (finance) if named, else any other approver of the request.
Nobody decides a request they made or a reward to themselves.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from decimal import ROUND_UP, Decimal
from zoneinfo import ZoneInfo

from bot.domain import BudgetLimit, Money, RewardRequest, Status, minor_units
from bot.policy.file import PolicyFile, is_user_group

# Reading a user group's members from Slack; the directory caches the answers.
MembersOf = Callable[[str], Awaitable[list[str]]]


class NoExchangeRate(LookupError):
    """The policy has no rate to convert an amount into its currency."""


class Directory:
    """Expands Slack user group IDs into their members, remembering each answer briefly so a
    burst of clicks does not become a burst of Slack calls."""

    def __init__(self, members_of: MembersOf, ttl_seconds: float = 60.0) -> None:
        self._members_of = members_of
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, list[str]]] = {}

    async def expand(self, people: Sequence[str]) -> list[str]:
        expanded: list[str] = []
        for entry in people:
            expanded += await self._members(entry) if is_user_group(entry) else [entry]
        return list(dict.fromkeys(expanded))

    async def _members(self, group: str) -> list[str]:
        # No lock around the Slack call: one slow answer must not hold up every other check.
        # Two concurrent misses both ask Slack, which is harmless.
        cached = self._cache.get(group)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        members = await self._members_of(group)
        self._cache[group] = (time.monotonic(), members)
        return members


class Policy:
    """The rules of one policy file, and the only reader of it: everything else asks here.
    Slack failures reading a user group propagate."""

    def __init__(self, rules: PolicyFile, directory: Directory) -> None:
        self._rules = rules
        self._directory = directory
        self._zone = ZoneInfo(rules.budgets.timezone)

    @property
    def approvals_channel(self) -> str | None:
        return self._rules.approvals.channel

    @property
    def allows_self_reward(self) -> bool:
        return self._rules.approvals.allow_self_reward

    @property
    def expire_after_hours(self) -> float | None:
        """How long a request waits for its decision before it expires (``None``: forever)."""
        return self._rules.approvals.expire_after_hours

    def decision_deadlines(self, now: datetime) -> tuple[datetime | None, datetime | None]:
        """When to remind the approvers of a request made at ``now``, and when to expire it
        (``None``: never)."""
        approvals = self._rules.approvals
        remind, expire = approvals.remind_after_hours, approvals.expire_after_hours
        return (
            None if remind is None else now + timedelta(hours=remind),
            None if expire is None else now + timedelta(hours=expire),
        )

    async def team_of(self, user_id: str) -> str | None:
        """The first team (in file order) whose members include ``user_id``."""
        for name, team in self._rules.teams.items():
            if user_id in await self._directory.expand(team.members):
                return name
        return None

    async def first_approvers(
        self, requester_id: str, recipient_id: str | None, team: str | None
    ) -> list[str]:
        """Who approves first: the team's managers, else the default approvers."""
        excluded = (requester_id, recipient_id)
        team_policy = self._rules.teams.get(team) if team else None
        if team_policy is not None:
            managers = await self._directory.expand(team_policy.managers)
            if allowed := [m for m in managers if m not in excluded]:
                return allowed
        defaults = await self._directory.expand(self._rules.approvals.default_approvers)
        return [a for a in defaults if a not in excluded]

    async def second_approvers(
        self, requester_id: str, recipient_id: str | None, team: str | None
    ) -> list[str]:
        """Who may give the second approval (before excluding whoever gave the first)."""
        excluded = (requester_id, recipient_id)
        if self._rules.approvals.second_approvers:
            finance = await self._directory.expand(self._rules.approvals.second_approvers)
            return [a for a in finance if a not in excluded]
        return await self._everyone_for(requester_id, recipient_id, team)

    async def _everyone_for(
        self, requester_id: str, recipient_id: str | None, team: str | None
    ) -> list[str]:
        team_policy = self._rules.teams.get(team) if team else None
        candidates = [
            *(team_policy.managers if team_policy else []),
            *self._rules.approvals.default_approvers,
        ]
        return [
            a
            for a in await self._directory.expand(candidates)
            if a not in (requester_id, recipient_id)
        ]

    async def deciders(self, request: RewardRequest) -> list[str]:
        """Who may approve or reject ``request`` at its current stage."""
        if request.status is Status.AWAITING_SECOND_APPROVAL:
            second = await self.second_approvers(
                request.requester_id, request.recipient_id, request.team
            )
            return [a for a in second if a != request.first_approved_by]
        return await self.first_approvers(request.requester_id, request.recipient_id, request.team)

    async def batch_deciders(self, batch: Sequence[RewardRequest]) -> list[str]:
        """Who may decide every request of a batch at its stage: a batch is decided at once."""
        everyone = await self.deciders(batch[0])
        for member in batch[1:]:
            allowed = await self.deciders(member)
            everyone = [a for a in everyone if a in allowed]
        return everyone

    async def batch_second_deciders(self, batch: Sequence[RewardRequest]) -> list[str]:
        """Who could give the second approval of every request of a batch (before excluding
        whoever gives the first)."""
        everyone: list[str] | None = None
        for member in batch:
            allowed = await self.second_approvers(
                member.requester_id, member.recipient_id, member.team
            )
            everyone = allowed if everyone is None else [a for a in everyone if a in allowed]
        return everyone or []

    async def reviewers(self, request: RewardRequest) -> list[str]:
        """Who may settle a request that needs review: any approver of it."""
        everyone = await self._everyone_for(
            request.requester_id, request.recipient_id, request.team
        )
        if request.approvals_required > 1:
            second = await self.second_approvers(
                request.requester_id, request.recipient_id, request.team
            )
            everyone += [a for a in second if a not in everyone]
        return everyone

    async def is_approver(self, user_id: str) -> bool:
        """Whether ``user_id`` approves anything at all under this policy."""
        everyone = [
            *self._rules.approvals.default_approvers,
            *self._rules.approvals.second_approvers,
            *(m for team in self._rules.teams.values() for m in team.managers),
        ]
        return user_id in await self._directory.expand(everyone)

    async def teams_managed_by(self, user_id: str) -> list[str]:
        return [
            name
            for name, team in self._rules.teams.items()
            if user_id in await self._directory.expand(team.managers)
        ]

    async def refusal_to_decide(self, request: RewardRequest, actor: str) -> str | None:
        """Why ``actor`` may not approve, reject or review ``request``, or ``None`` if they may.
        Checked before anything about the request is told to the actor."""
        if actor == request.requester_id:
            return "You cannot approve or reject your own reward request."
        if actor == request.recipient_id:
            return "You cannot approve or reject a reward that is for you."
        if request.status is Status.AWAITING_SECOND_APPROVAL:
            return await self._second_stage_refusal(request, actor)
        if request.status is Status.PENDING_APPROVAL:
            allowed = await self.deciders(request)
        else:
            # Decided or under review: any approver of the request may act or be told why not.
            allowed = await self.reviewers(request)
            allowed += [p for p in (request.first_approved_by, request.decided_by) if p]
        if actor not in allowed:
            if request.team and await self.is_approver(actor):
                return f"Reward #{request.id} is for the managers of team {request.team} to decide."
            return "Only a configured approver can approve or reject reward requests."
        if request.status is Status.PENDING_APPROVAL and request.approvals_required > 1:
            second = await self.second_approvers(
                request.requester_id, request.recipient_id, request.team
            )
            if not [a for a in second if a != actor]:
                return (
                    f"Reward #{request.id} needs two approvals and only you can give the second, "
                    "so another approver must give the first."
                )
        return None

    async def _second_stage_refusal(self, request: RewardRequest, actor: str) -> str | None:
        if actor == request.first_approved_by:
            return (
                f"You gave reward #{request.id} its first approval; the second must come "
                "from a different approver."
            )
        if actor not in await self.deciders(request):
            return (
                f"Reward #{request.id} needs its second approval from "
                f"{self._second_approvers_label()}."
            )
        return None

    def _second_approvers_label(self) -> str:
        if self._rules.approvals.second_approvers:
            return (
                "the finance approvers ("
                + ", ".join(
                    f"<!subteam^{p}>" if is_user_group(p) else f"<@{p}>"
                    for p in self._rules.approvals.second_approvers
                )
                + ")"
            )
        return "another approver"

    def approvals_required(self, amount: Money | None) -> int:
        """Two approvals above the threshold (``amount`` is in the policy's currency)."""
        threshold = self._rules.approvals.second_approval_above
        return 2 if threshold is not None and amount and amount.amount > threshold else 1

    def in_policy_currency(self, money: Money) -> Money | None:
        """``money`` converted with the policy's rates; ``None`` if the policy has no amounts.
        Raises :class:`NoExchangeRate` when a rate is needed but missing."""
        currency = self._rules.currency
        if currency is None:
            return None
        if money.currency == currency:
            return money
        rate = self._rules.rates.get(money.currency)
        if rate is None:
            raise NoExchangeRate(money.currency)
        # Rounded up: a budget is never charged less than the card's value.
        converted = (money.amount * rate).quantize(
            Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_UP
        )
        return Money(amount=converted, currency=currency)

    def month_of(self, when: datetime) -> str:
        """The budget month (``2026-11``) of an instant, in the policy's time zone."""
        return when.astimezone(self._zone).strftime("%Y-%m")

    @property
    def currency(self) -> str | None:
        """The currency of every limit and budget; ``None`` when the policy has none."""
        return self._rules.currency

    @property
    def timezone_name(self) -> str:
        """The time zone budget months are counted in, as the file names it."""
        return self._rules.budgets.timezone

    @property
    def max_reward(self) -> Money | None:
        """The most a single reward may cost, in the policy's currency."""
        return self._money(self._rules.approvals.max_amount)

    @property
    def second_approval_above(self) -> Money | None:
        """Rewards costing more than this need a second approval."""
        return self._money(self._rules.approvals.second_approval_above)

    @property
    def team_names(self) -> list[str]:
        """The configured teams, in file order."""
        return list(self._rules.teams)

    def team_budget(self, team: str | None) -> Money | None:
        """The monthly budget of ``team``; ``None`` if it has none or is not configured."""
        team_policy = self._rules.teams.get(team) if team is not None else None
        return self._money(team_policy.monthly_budget if team_policy else None)

    def budget_limits(self, team: str | None, requester: str) -> list[BudgetLimit]:
        """The monthly budgets a team member's request counts against; ``requester`` names
        the requester's own budget in a refusal ("your", "<@U123>'s")."""
        limits = []
        if team and (team_budget := self.team_budget(team)):
            limits.append(BudgetLimit(owner=f"team {team}'s", team=team, limit=team_budget))
        if requester_budget := self._money(self._rules.budgets.per_requester_monthly):
            limits.append(BudgetLimit(owner=requester, team=None, limit=requester_budget))
        return limits

    def _money(self, amount: Decimal | None) -> Money | None:
        if amount is None or self._rules.currency is None:
            return None
        return Money(amount=amount, currency=self._rules.currency)
