"""The approval policy file (``REWARDBOT_POLICY``, TOML): who approves, limits and budgets.

The file is validated as a whole when the bot starts; a mistake stops start-up with the file,
the line, the key and the reason. ``REWARDBOT_APPROVERS`` alone is the simplest policy: those
people approve everything, with no limits or budgets. The README has an annotated example.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.domain import TOO_LARGE, CurrencyCode, minor_units
from bot.errors import ConfigError

_USER = re.compile(r"[UW][A-Z0-9]{2,}")
_USER_GROUP = re.compile(r"S[A-Z0-9]{2,}")
_CHANNEL = re.compile(r"[CG][A-Z0-9]{2,}")


def is_user_group(slack_id: str) -> bool:
    return bool(_USER_GROUP.fullmatch(slack_id))


def is_user_id(slack_id: str) -> bool:
    return bool(_USER.fullmatch(slack_id))


def _person_or_group(value: str) -> str:
    if not (is_user_id(value) or is_user_group(value)):
        raise ValueError(
            f"{value!r} is not a Slack user ID (like U012ABCDEF) or user group ID (like S012AB)"
        )
    return value


def _channel(value: str) -> str:
    if not _CHANNEL.fullmatch(value):
        raise ValueError(f"{value!r} is not a Slack channel ID (like C012ABCDEF)")
    return value


def _positive(value: Decimal) -> Decimal:
    if not value.is_finite() or value <= 0:
        raise ValueError("must be a number above zero")
    # No limit, rate or budget is anywhere near a billion; larger ones would overflow sums.
    if value >= TOO_LARGE:
        raise ValueError(f"must be less than {TOO_LARGE:,}")
    return value


def _not_a_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("must be a number of hours, not true or false")
    return value


PersonOrGroup = Annotated[str, AfterValidator(_person_or_group)]
People = Annotated[list[PersonOrGroup], AfterValidator(lambda v: list(dict.fromkeys(v)))]
ChannelId = Annotated[str, AfterValidator(_channel)]
# Written as "250" or 250 in the file; always in the policy's currency.
Amount = Annotated[Decimal, AfterValidator(_positive)]
# Up to a year: a request is never kept waiting longer.
Hours = Annotated[float, BeforeValidator(_not_a_bool), Field(gt=0, le=24 * 366)]


class _Section(BaseModel):
    # A misspelt key must not silently drop a rule.
    model_config = ConfigDict(extra="forbid", frozen=True)


class TeamPolicy(_Section):
    """One team: its members' requests go to its managers and count against its budget."""

    members: People = Field(min_length=1)
    managers: People = []
    monthly_budget: Amount | None = None


class ApprovalsPolicy(_Section):
    default_approvers: People = Field(min_length=1)
    channel: ChannelId | None = None
    allow_self_reward: bool = False
    second_approval_above: Amount | None = None
    second_approvers: People = []
    max_amount: Amount | None = None
    remind_after_hours: Hours | None = None
    expire_after_hours: Hours | None = None

    @model_validator(mode="after")
    def _reminder_before_expiry(self) -> ApprovalsPolicy:
        if (
            self.remind_after_hours is not None
            and self.expire_after_hours is not None
            and self.remind_after_hours >= self.expire_after_hours
        ):
            raise ValueError("remind_after_hours must be less than expire_after_hours")
        return self


class BudgetsPolicy(_Section):
    timezone: str = "UTC"
    per_requester_monthly: Amount | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        # zoneinfo reads the system's zone database, else the tzdata package (a dependency),
        # so a zone resolves the same on a slim image without /usr/share/zoneinfo. A name
        # that is a folder of either ("Europe") fails to open rather than being missing.
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"{value!r} is not a time zone name like Europe/London") from None
        return value


class PolicyFile(_Section):
    """The whole file. Every amount is in ``currency``; ``rates`` convert others into it."""

    currency: CurrencyCode | None = None
    rates: dict[CurrencyCode, Amount] = {}
    approvals: ApprovalsPolicy
    budgets: BudgetsPolicy = BudgetsPolicy()
    teams: dict[str, TeamPolicy] = {}

    @model_validator(mode="after")
    def _consistent(self) -> PolicyFile:
        amounts = self._amounts()
        if amounts and self.currency is None:
            raise ValueError(
                'currency: missing; name the currency of the limits and budgets, like "GBP"'
            )
        if self.currency is not None:
            places = minor_units(self.currency)
            for where, amount in amounts:
                if amount != amount.quantize(Decimal(1).scaleb(-places)):
                    raise ValueError(
                        f"{where}: {self.currency} amounts have at most {places} decimal places"
                    )
        member_of: dict[str, str] = {}
        for name, team in self.teams.items():
            for member in team.members:
                if not is_user_group(member) and member in member_of:
                    raise ValueError(
                        f"teams.{name}.members: {member} is also a member of team "
                        f"{member_of[member]!r}; a person's requests can go to one team only"
                    )
                member_of[member] = name
        approvals = self.approvals
        if (
            approvals.second_approval_above is not None
            and approvals.max_amount is not None
            and approvals.second_approval_above >= approvals.max_amount
        ):
            raise ValueError(
                "approvals.second_approval_above: must be below max_amount, or no request "
                "would ever need the second approval"
            )
        if self.approvals.second_approvers and self.approvals.second_approval_above is None:
            raise ValueError(
                "approvals.second_approvers: set, but second_approval_above is not; "
                "say above which amount the second approval is needed"
            )
        return self

    def _amounts(self) -> list[tuple[str, Decimal]]:
        found = [
            (f"approvals.{key}", value)
            for key in ("second_approval_above", "max_amount")
            if (value := getattr(self.approvals, key)) is not None
        ]
        if self.budgets.per_requester_monthly is not None:
            found.append(("budgets.per_requester_monthly", self.budgets.per_requester_monthly))
        found += [
            (f"teams.{name}.monthly_budget", team.monthly_budget)
            for name, team in self.teams.items()
            if team.monthly_budget is not None
        ]
        return found

    @classmethod
    def for_approvers(cls, approvers: Sequence[str]) -> PolicyFile:
        """The policy ``REWARDBOT_APPROVERS`` stands for: those people approve everything."""
        return cls(approvals=ApprovalsPolicy(default_approvers=list(approvers)))


def load_policy(path: Path) -> PolicyFile:
    """Read and validate the policy file; raises :class:`ConfigError` naming file, line, key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read policy file {path}: {exc.strerror}.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"Policy file {path} is not UTF-8 text.") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Policy file {path} is not valid TOML: {exc}.") from None
    try:
        return PolicyFile.model_validate(data)
    except ArithmeticError:
        raise ConfigError(f"Invalid policy file {path}: a number is out of range.") from None
    except ValidationError as exc:
        problems = "; ".join(_describe(error, text) for error in exc.errors())
        raise ConfigError(f"Invalid policy file {path}: {problems}.") from None


def _describe(error: Any, text: str) -> str:
    # "[key]" marks an error in a table's key rather than its value.
    keys = [str(part) for part in error["loc"] if isinstance(part, str) and part != "[key]"]
    if error["type"] == "extra_forbidden":
        reason = "unknown key (check its spelling)"
    elif error["type"] == "missing":
        reason = "missing"
    else:
        reason = str(error["msg"]).removeprefix("Value error, ")
        # Checks across keys name the key they are about at the start of their message.
        if not keys and (about := re.match(r"([\w.]+): (.*)", reason, re.DOTALL)):
            keys, reason = about.group(1).split("."), about.group(2)
    where = ".".join(keys)
    line = _line_of(text, keys)
    place = f"line {line}, " if line else ""
    return f"{place}{where}: {reason}" if where else f"{place}{reason}"


def _line_of(text: str, keys: list[str]) -> int | None:
    """The line that defines the longest prefix of ``keys`` (a key or a ``[table]`` header)."""
    table: list[str] = []
    best: tuple[int, int] | None = None  # (prefix length, line number)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if header := re.fullmatch(r"\[\s*([^\[\]]+?)\s*\]", line):
            table = [part.strip().strip("\"'") for part in header.group(1).split(".")]
            path = table
        elif key := re.match(r"([A-Za-z0-9_\-\"'.]+)\s*=", line):
            path = table + [part.strip("\"'") for part in key.group(1).split(".")]
        else:
            continue
        if path == keys[: len(path)] and (best is None or len(path) > best[0]):
            best = (len(path), number)
    return best[1] if best else None
