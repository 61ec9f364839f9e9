"""What ``Policy`` decides, without Slack or a database: who approves, who is refused and why,
when two approvals are needed, what a card costs in the policy's currency, and its budget month.

The policy is the one the end-to-end policy tests run under: team ``eng`` is the user group
S0ENG (Maya, Jane, Arjun) managed by Arjun; Lin is the default approver; Finn is finance (user
group S0FINANCE); Omar is in no team.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bot.domain import Money, RewardRequest, Status
from bot.policy.file import ApprovalsPolicy, PolicyFile, TeamPolicy
from bot.policy.rules import Directory, NoExchangeRate, Policy
from tests.unit.support import stored_request

MAYA, ARJUN, LIN, JANE, OMAR, FINN = "U0MAYA", "U0ARJUN", "U0LIN", "U0JANE", "U0OMAR", "U0FINN"
ENG_GROUP, FINANCE_GROUP = "S0ENG", "S0FINANCE"
GROUPS = {ENG_GROUP: [MAYA, JANE, ARJUN], FINANCE_GROUP: [FINN]}

APPROVALS = ApprovalsPolicy(
    default_approvers=[LIN],
    second_approval_above=Decimal("100"),
    second_approvers=[FINANCE_GROUP],
    max_amount=Decimal("400"),
)
RULES = PolicyFile(
    currency="GBP",
    rates={"USD": Decimal("0.80")},
    approvals=APPROVALS,
    teams={"eng": TeamPolicy(members=[ENG_GROUP], managers=[ARJUN], monthly_budget=Decimal("300"))},
)


class SlackGroups:
    """Answers user group lookups from ``GROUPS``, counting them."""

    def __init__(self) -> None:
        self.lookups: list[str] = []

    async def members_of(self, group: str) -> list[str]:
        self.lookups.append(group)
        return list(GROUPS[group])


def policy_of(rules: PolicyFile = RULES) -> Policy:
    return Policy(rules, Directory(SlackGroups().members_of))


def rules_with(**changes: Any) -> PolicyFile:
    """``RULES`` with some of its sections changed, validated as a policy file is."""
    return PolicyFile.model_validate(RULES.model_dump() | changes)


def with_approvals(**changes: Any) -> PolicyFile:
    """``RULES`` with some of its ``[approvals]`` settings changed."""
    return rules_with(approvals=APPROVALS.model_dump() | changes)


def reward(**changes: Any) -> RewardRequest:
    """Reward #7: Maya (team eng) asks for 25.00 GBP for Jane, waiting for its approval."""
    fields: dict[str, Any] = {"team": "eng"} | changes
    return stored_request(at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC), **fields)


def gbp(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="GBP")


# -- teams and the directory -------------------------------------------------------------------


async def test_a_team_is_found_through_its_slack_user_group() -> None:
    policy = policy_of()
    assert await policy.team_of(MAYA) == "eng"
    assert await policy.team_of(OMAR) is None


async def test_the_first_team_in_file_order_is_the_persons_team() -> None:
    teams = {
        "eng": TeamPolicy(members=[ENG_GROUP], managers=[ARJUN]),
        "all": TeamPolicy(members=[MAYA, OMAR], managers=[LIN]),
    }
    policy = policy_of(rules_with(teams=teams))
    assert await policy.team_of(MAYA) == "eng"
    assert await policy.team_of(OMAR) == "all"


async def test_the_directory_remembers_a_group_briefly() -> None:
    slack = SlackGroups()
    directory = Directory(slack.members_of)
    assert await directory.expand([ENG_GROUP, LIN, MAYA]) == [MAYA, JANE, ARJUN, LIN]
    assert await directory.expand([ENG_GROUP]) == [MAYA, JANE, ARJUN]
    assert slack.lookups == [ENG_GROUP]
    forgetful = Directory(slack.members_of, ttl_seconds=0)
    await forgetful.expand([FINANCE_GROUP])
    await forgetful.expand([FINANCE_GROUP])
    assert slack.lookups == [ENG_GROUP, FINANCE_GROUP, FINANCE_GROUP]


async def test_who_is_an_approver_and_of_which_teams() -> None:
    policy = policy_of()
    for approver in (ARJUN, LIN, FINN):
        assert await policy.is_approver(approver), approver
    for other in (MAYA, JANE, OMAR):
        assert not await policy.is_approver(other), other
    assert await policy.teams_managed_by(ARJUN) == ["eng"]
    assert await policy.teams_managed_by(LIN) == []


# -- who approves ------------------------------------------------------------------------------


async def test_team_members_requests_go_to_their_managers_only() -> None:
    assert await policy_of().first_approvers(MAYA, JANE, "eng") == [ARJUN]


async def test_outsider_and_manager_requests_go_to_the_default_approvers() -> None:
    policy = policy_of()
    assert await policy.first_approvers(OMAR, JANE, None) == [LIN]
    assert await policy.first_approvers(ARJUN, JANE, "eng") == [LIN]  # not his own
    assert await policy.first_approvers(MAYA, ARJUN, "eng") == [LIN]  # nor a reward for him


async def test_nobody_is_left_to_approve_a_default_approvers_own_reward() -> None:
    assert await policy_of().first_approvers(OMAR, LIN, None) == []


async def test_second_approvers_are_finance_else_any_other_approver() -> None:
    assert await policy_of().second_approvers(MAYA, JANE, "eng") == [FINN]
    assert await policy_of().second_approvers(MAYA, FINN, "eng") == []
    no_finance = policy_of(with_approvals(second_approvers=[]))
    assert await no_finance.second_approvers(MAYA, JANE, "eng") == [ARJUN, LIN]
    assert await no_finance.second_approvers(OMAR, JANE, None) == [LIN]


async def test_deciders_at_each_stage() -> None:
    policy = policy_of()
    assert await policy.deciders(reward()) == [ARJUN]
    second = reward(
        status=Status.AWAITING_SECOND_APPROVAL, approvals_required=2, first_approved_by=ARJUN
    )
    assert await policy.deciders(second) == [FINN]
    no_finance = policy_of(with_approvals(second_approvers=[]))
    assert await no_finance.deciders(second) == [LIN]  # never the first approver again


async def test_a_batch_is_decided_by_who_may_decide_every_request_of_it() -> None:
    policy = policy_of()
    # Maya's batch, Lin among its recipients, is for her team's manager.
    batch = [reward(id=1), reward(id=2, recipient_id=OMAR), reward(id=3, recipient_id=LIN)]
    assert await policy.batch_deciders(batch) == [ARJUN]
    # Arjun and Lin are both recipients: nobody could decide the whole batch.
    assert await policy.batch_deciders([reward(recipient_id=ARJUN), reward(recipient_id=LIN)]) == []


async def test_a_batch_second_approval_needs_someone_for_every_recipient() -> None:
    policy = policy_of(with_approvals(second_approvers=[FINN, OMAR]))
    batch = [reward(id=1, recipient_id=FINN), reward(id=2, recipient_id=OMAR)]
    assert await policy.batch_second_deciders(batch) == []
    assert await policy.batch_second_deciders([reward(id=1), reward(id=2)]) == [FINN, OMAR]
    assert await policy.batch_second_deciders([]) == []


async def test_reviewers_are_every_approver_of_the_request() -> None:
    policy = policy_of()
    assert await policy.reviewers(reward(status=Status.NEEDS_REVIEW)) == [ARJUN, LIN]
    two_step = reward(status=Status.NEEDS_REVIEW, approvals_required=2)
    assert await policy.reviewers(two_step) == [ARJUN, LIN, FINN]


# -- refusals ----------------------------------------------------------------------------------


async def test_nobody_decides_their_own_request_or_a_reward_for_them() -> None:
    policy = policy_of()
    own = await policy.refusal_to_decide(reward(requester_id=ARJUN, team=None), ARJUN)
    assert own == "You cannot approve or reject your own reward request."
    for_them = await policy.refusal_to_decide(reward(recipient_id=ARJUN), ARJUN)
    assert for_them == "You cannot approve or reject a reward that is for you."


async def test_a_teams_request_is_refused_to_other_approvers_and_to_non_approvers() -> None:
    policy = policy_of()
    assert await policy.refusal_to_decide(reward(), ARJUN) is None
    assert await policy.refusal_to_decide(reward(), LIN) == (
        "Reward #7 is for the managers of team eng to decide."
    )
    assert await policy.refusal_to_decide(reward(), OMAR) == (
        "Only a configured approver can approve or reject reward requests."
    )
    outsiders = reward(requester_id=OMAR, team=None)
    assert await policy.refusal_to_decide(outsiders, LIN) is None
    assert await policy.refusal_to_decide(outsiders, ARJUN) == (
        "Only a configured approver can approve or reject reward requests."
    )


async def test_the_second_approval_comes_from_someone_else_and_from_finance() -> None:
    second = reward(
        status=Status.AWAITING_SECOND_APPROVAL, approvals_required=2, first_approved_by=ARJUN
    )
    policy = policy_of()
    assert await policy.refusal_to_decide(second, ARJUN) == (
        "You gave reward #7 its first approval; the second must come from a different approver."
    )
    assert await policy.refusal_to_decide(second, LIN) == (
        "Reward #7 needs its second approval from the finance approvers (<!subteam^S0FINANCE>)."
    )
    assert await policy.refusal_to_decide(second, FINN) is None
    no_finance = policy_of(with_approvals(second_approvers=[]))
    assert await no_finance.refusal_to_decide(second, LIN) is None
    named = policy_of(with_approvals(second_approvers=[FINN]))
    assert await named.refusal_to_decide(second, LIN) == (
        "Reward #7 needs its second approval from the finance approvers (<@U0FINN>)."
    )


async def test_no_second_approver_left_is_labelled_another_approver() -> None:
    """Without a finance group, the refusal names nobody in particular."""
    second = reward(
        requester_id=OMAR,
        team=None,
        status=Status.AWAITING_SECOND_APPROVAL,
        approvals_required=2,
        first_approved_by=ARJUN,
    )
    policy = policy_of(with_approvals(second_approvers=[]))
    assert await policy.refusal_to_decide(second, FINN) == (
        "Reward #7 needs its second approval from another approver."
    )


async def test_the_only_possible_second_approver_cannot_give_the_first() -> None:
    """Arjun and Lin manage eng; only Arjun may give second approvals. If Arjun approved
    first, nobody could give the second, so he must wait for Lin's first approval."""
    policy = policy_of(
        rules_with(
            approvals=APPROVALS.model_dump() | {"second_approvers": [ARJUN]},
            teams={"eng": TeamPolicy(members=[ENG_GROUP], managers=[ARJUN, LIN])},
        )
    )
    two_step = reward(approvals_required=2)
    assert await policy.refusal_to_decide(two_step, ARJUN) == (
        "Reward #7 needs two approvals and only you can give the second, so another approver "
        "must give the first."
    )
    assert await policy.refusal_to_decide(two_step, LIN) is None


async def test_a_decided_request_is_for_its_approvers_and_who_decided_it() -> None:
    policy = policy_of()
    decided = reward(status=Status.FAILED, decided_by=FINN)
    for approver in (ARJUN, LIN, FINN):
        assert await policy.refusal_to_decide(decided, approver) is None, approver
    assert await policy.refusal_to_decide(reward(status=Status.FAILED), FINN) == (
        "Reward #7 is for the managers of team eng to decide."
    )


# -- amounts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "required"),
    [(None, 1), ("25.00", 1), ("100.00", 1), ("100.01", 2), ("400.00", 2)],
)
def test_two_approvals_only_above_the_threshold(amount: str | None, required: int) -> None:
    assert policy_of().approvals_required(gbp(amount) if amount else None) == required


def test_without_a_threshold_one_approval_is_enough() -> None:
    policy = policy_of(with_approvals(second_approval_above=None, second_approvers=[]))
    assert policy.approvals_required(gbp("399.00")) == 1


def test_amounts_in_other_currencies_are_converted_with_the_policys_rates() -> None:
    policy = policy_of()
    assert policy.in_policy_currency(gbp("12.34")) == gbp("12.34")
    assert policy.in_policy_currency(Money(amount=Decimal("50"), currency="USD")) == gbp("40.00")
    with pytest.raises(NoExchangeRate, match="EUR"):
        policy.in_policy_currency(Money(amount=Decimal("30"), currency="EUR"))


def test_conversion_rounds_up_to_the_policy_currency() -> None:
    rates = {"USD": Decimal("0.7915"), "JPY": Decimal("0.0052")}
    slack = SlackGroups()
    policy = Policy(rules_with(rates=rates), Directory(slack.members_of))
    # Rounded up, so a budget is never charged less than the card is worth.
    usd = policy.in_policy_currency(Money(amount=Decimal("10.00"), currency="USD"))
    assert usd == Money(amount=Decimal("7.92"), currency="GBP")
    tiny = policy.in_policy_currency(Money(amount=Decimal("1"), currency="JPY"))
    assert tiny == Money(amount=Decimal("0.01"), currency="GBP")
    jpy = policy.in_policy_currency(Money(amount=Decimal("1000"), currency="JPY"))
    assert jpy == Money(amount=Decimal("5.20"), currency="GBP")
    with pytest.raises(NoExchangeRate):
        policy.in_policy_currency(Money(amount=Decimal(1), currency="EUR"))
    # Converting asks Slack nothing.
    assert slack.lookups == []


def test_a_policy_without_a_currency_has_no_amounts() -> None:
    policy = policy_of(PolicyFile.for_approvers([LIN]))
    assert policy.in_policy_currency(Money(amount=Decimal("50"), currency="USD")) is None
    assert policy.currency is None
    assert policy.approvals_required(None) == 1
    assert policy_of().currency == "GBP"


@pytest.mark.parametrize(
    ("timezone", "moment", "month"),
    [
        ("UTC", datetime(2026, 11, 30, 23, 59, tzinfo=UTC), "2026-11"),
        # 02:00 UTC on 1 December is still 30 November in New York.
        ("America/New_York", datetime(2026, 12, 1, 2, 0, tzinfo=UTC), "2026-11"),
        ("Asia/Tokyo", datetime(2026, 11, 30, 16, 0, tzinfo=UTC), "2026-12"),
    ],
)
def test_budget_month_follows_the_policy_time_zone(
    timezone: str, moment: datetime, month: str
) -> None:
    assert policy_of(rules_with(budgets={"timezone": timezone})).month_of(moment) == month


def test_the_approvals_channel_comes_from_the_file() -> None:
    assert policy_of().approvals_channel is None
    assert policy_of(with_approvals(channel="C0APPROVALS")).approvals_channel == "C0APPROVALS"
