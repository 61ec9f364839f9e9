"""The policy file: every mistake stops start-up naming the file, the line, the key and why."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.policy.file import PolicyFile, load_policy

README = Path(__file__).parents[2] / "README.md"

GOOD = """\
currency = "GBP"

[approvals]
default_approvers = ["U0LIN"]
max_amount = "400"

[teams.eng]
members = ["U0MAYA", "S0ENG"]
managers = ["U0ARJUN"]
monthly_budget = "300"
"""


def _load(tmp_path: Path, text: str) -> PolicyFile:
    path = tmp_path / "rewardbot.toml"
    path.write_text(text)
    return load_policy(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('currency = "GBP"\n[approvals\n', r"is not valid TOML: .*line 2"),
        ("", r"line 1\b|approvals: missing"),
        (GOOD.replace("managers", "manager"), r"line 9, teams\.eng\.manager: unknown key"),
        (
            GOOD.replace('"U0ARJUN"', '"arjun"'),
            r"line 9, teams\.eng\.managers: 'arjun' is not a Slack user ID",
        ),
        (
            GOOD.replace('default_approvers = ["U0LIN"]', "default_approvers = []"),
            r"line 4, approvals\.default_approvers: List should have at least 1 item",
        ),
        (GOOD.replace('currency = "GBP"', ""), r"currency: missing; name the currency"),
        (GOOD.replace('currency = "GBP"', 'currency = "pounds"'), r"line 1, currency: 'pounds'"),
        # Three capital letters are not enough: the code must be in ISO 4217, and be money.
        (
            GOOD.replace('currency = "GBP"', 'currency = "USS"'),
            r"line 1, currency: 'USS' is not an ISO 4217 currency code",
        ),
        (
            GOOD.replace('currency = "GBP"', 'currency = "XAU"'),
            r"line 1, currency: 'XAU' is an ISO 4217 code without minor units",
        ),
        (
            GOOD + '\n[rates]\nUSS = "0.8"\n',
            r"line 13, rates\.USS: 'USS' is not an ISO 4217 currency code",
        ),
        (
            GOOD.replace('currency = "GBP"', 'currency = "UGX"').replace('"400"', '"400.5"'),
            r"line 5, approvals\.max_amount: UGX amounts have at most 0 decimal places",
        ),
        (
            GOOD.replace('max_amount = "400"', 'max_amount = "400.005"'),
            r"line 5, approvals\.max_amount: GBP amounts have at most 2 decimal places",
        ),
        (
            GOOD.replace('monthly_budget = "300"', 'monthly_budget = "-5"'),
            r"line 10, teams\.eng\.monthly_budget: must be a number above zero",
        ),
        (
            GOOD.replace('monthly_budget = "300"', 'monthly_budget = "lots"'),
            r"line 10, teams\.eng\.monthly_budget: Input should be a valid decimal",
        ),
        (
            GOOD + '\n[teams.ops]\nmembers = ["U0MAYA"]\n',
            r"line 13, teams\.ops\.members: U0MAYA is also a member of team 'eng'",
        ),
        (
            GOOD.replace(
                'max_amount = "400"',
                "remind_after_hours = 48\nexpire_after_hours = 24",
            ),
            r"remind_after_hours must be less than expire_after_hours",
        ),
        (
            GOOD + '\n[budgets]\ntimezone = "Mars/Olympus"\n',
            r"line 13, budgets\.timezone: 'Mars/Olympus' is not a time zone name",
        ),
        (
            GOOD + '\n[rates]\nusd = "0.8"\n',
            r"line 13, rates\.usd: 'usd' is not an ISO 4217 currency code",
        ),
        (
            GOOD.replace('max_amount = "400"', 'second_approvers = ["U0FINN"]'),
            r"line 5, approvals\.second_approvers: set, but second_approval_above is not",
        ),
        (
            GOOD.replace('max_amount = "400"', 'max_amount = "1e30"'),
            r"line 5, approvals\.max_amount: must be less than 1,000,000,000",
        ),
        (
            GOOD.replace('max_amount = "400"', "expire_after_hours = 1e8"),
            r"line 5, approvals\.expire_after_hours: Input should be less than or equal to 8784",
        ),
        (
            GOOD.replace('max_amount = "400"', "remind_after_hours = true"),
            r"line 5, approvals\.remind_after_hours: must be a number of hours, not true",
        ),
        (
            GOOD.replace('max_amount = "400"', 'max_amount = "400"\nsecond_approval_above = "400"'),
            r"line 6, approvals\.second_approval_above: must be below max_amount",
        ),
        (
            GOOD + '\n[rates]\nUSD = "1e25"\n',
            r"line 13, rates\.USD: must be less than",
        ),
        (
            GOOD.replace('max_amount = "400"', 'channel = "#rewards"'),
            r"line 5, approvals\.channel: '#rewards' is not a Slack channel ID",
        ),
    ],
)
def test_malformed_policy_is_refused_with_file_line_key_and_reason(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=r"rewardbot\.toml") as raised:
        _load(tmp_path, text)
    assert re.search(message, str(raised.value)), str(raised.value)


def test_unreadable_policy_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Cannot read policy file .*nope\.toml"):
        load_policy(tmp_path / "nope.toml")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_policy(binary)


def test_the_readme_example_policy_is_valid(tmp_path: Path) -> None:
    example = re.search(r"```toml\n(.*?)```", README.read_text(), re.DOTALL)
    assert example, "the README has no TOML example"
    rules = _load(tmp_path, example.group(1))
    assert rules.teams and rules.approvals.second_approval_above is not None


def test_approvers_list_is_the_simplest_policy() -> None:
    rules = PolicyFile.for_approvers(["U0A", "U0B"])
    assert rules.approvals.default_approvers == ["U0A", "U0B"]
    assert rules.currency is None and not rules.teams
