"""The policy's time zone comes from the IANA database, which the ``tzdata`` package supplies
when the system has none (slim containers, Windows): budget months must not depend on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.policy.file import load_policy

ROOT = Path(__file__).parents[2]

POLICY = """\
currency = "GBP"

[approvals]
default_approvers = ["U0LIN"]

[budgets]
timezone = "{zone}"
per_requester_monthly = "300"
"""

# Loads the policy named by argv[1] and prints what it made of the zone, or the refusal.
_PROBE = """
import json, sys, zoneinfo
from datetime import UTC, datetime
from bot.errors import ConfigError
from bot.policy.file import load_policy
from bot.policy.rules import Directory, Policy

async def nobody(group: str) -> list[str]:
    return []

try:
    policy = Policy(load_policy(__import__("pathlib").Path(sys.argv[1])), Directory(nobody))
except ConfigError as refusal:
    print(json.dumps({"tzpath": list(zoneinfo.TZPATH), "refused": str(refusal)}))
else:
    # 23:30 UTC on 30 June is already July in London (summer time).
    month = policy.month_of(datetime(2026, 6, 30, 23, 30, tzinfo=UTC))
    print(json.dumps({"tzpath": list(zoneinfo.TZPATH), "month": month}))
"""


def _probe_without_a_system_zone_database(tmp_path: Path, zone: str) -> dict[str, object]:
    """Run the probe in a fresh interpreter whose only zone directory is empty."""
    empty = tmp_path / "no-zoneinfo"
    empty.mkdir()
    policy = tmp_path / "rewardbot.toml"
    policy.write_text(POLICY.format(zone=zone))
    env = {**os.environ, "PYTHONTZPATH": str(empty), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(policy)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer: dict[str, object] = json.loads(done.stdout)
    assert answer.pop("tzpath") == [str(empty)], "the system zone database was still in use"
    return answer


def test_a_policy_zone_resolves_from_tzdata_when_the_system_has_no_zone_database(
    tmp_path: Path,
) -> None:
    assert _probe_without_a_system_zone_database(tmp_path, "Europe/London") == {"month": "2026-07"}


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Europe", "europe/london", "zone.tab"])
def test_a_wrong_zone_is_refused_with_its_line_without_a_system_zone_database(
    tmp_path: Path, zone: str
) -> None:
    answer = _probe_without_a_system_zone_database(tmp_path, zone)
    assert answer == {
        "refused": f"Invalid policy file {tmp_path / 'rewardbot.toml'}: line 7, "
        f"budgets.timezone: {zone!r} is not a time zone name like Europe/London."
    }


@pytest.mark.parametrize("zone", ["Europe", "Etc", ""])
def test_a_zone_directory_or_an_empty_name_is_refused_with_its_line(
    tmp_path: Path, zone: str
) -> None:
    path = tmp_path / "rewardbot.toml"
    path.write_text(POLICY.format(zone=zone))
    with pytest.raises(ConfigError, match=r"line 7, budgets\.timezone: .* is not a time zone"):
        load_policy(path)
