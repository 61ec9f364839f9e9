"""Errors raised by rewardbot's core, each carrying a message fit to show a Slack user.

::

    RewardbotError
    ├── ConfigError           a setting is missing or malformed; start-up stops
    ├── InvalidRequest        a reward request failed validation: why, per field of the form
    ├── OverBudget            storing the request would overspend a monthly budget
    ├── NotAllowed            the actor may not do this (not an approver, own request, ...)
    ├── RequestNotFound       no reward request with that id
    └── AlreadyDecided        another decision won the race; ``status`` is what it is now

Provider failures have their own taxonomy in :mod:`providers.errors`.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.domain import FormField


class RewardbotError(Exception):
    """Base class of rewardbot's own errors."""


class ConfigError(RewardbotError):
    """Configuration is missing or malformed."""


class InvalidRequest(RewardbotError):
    """A reward request was refused: ``field_errors`` says why for each offending field of the
    form, ``amount_errors`` for each person (by user id) given an amount of their own."""

    def __init__(
        self, field_errors: Mapping[FormField, str], amount_errors: Mapping[str, str] | None = None
    ) -> None:
        self.field_errors = dict(field_errors)
        self.amount_errors = dict(amount_errors or {})
        reasons = [f"{field}: {why}" for field, why in self.field_errors.items()]
        reasons += [f"amount of {user}: {why}" for user, why in self.amount_errors.items()]
        super().__init__("; ".join(reasons))


class OverBudget(RewardbotError):
    """The request would take a team's or a requester's monthly spend over its budget."""


class NotAllowed(RewardbotError):
    """The acting user is not permitted to perform this action."""


class RequestNotFound(RewardbotError):
    """The reward request does not exist."""


class AlreadyDecided(RewardbotError):
    """The request is no longer in a state that accepts this decision."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status
