"""Errors raised by rewardbot's core, each carrying a message fit to show a Slack user.

::

    RewardbotError
    ├── ConfigError           a setting is missing or malformed; start-up stops
    ├── InvalidRequest        a reward request failed validation; ``field_errors`` maps field → why
    ├── OverBudget            storing the request would overspend a monthly budget
    ├── NotAllowed            the actor may not do this (not an approver, own request, ...)
    ├── RequestNotFound       no reward request with that id
    └── AlreadyDecided        another decision won the race; ``status`` is what it is now

Provider failures have their own taxonomy in :mod:`providers.errors`.
"""

from __future__ import annotations

from collections.abc import Mapping


class RewardbotError(Exception):
    """Base class of rewardbot's own errors."""


class ConfigError(RewardbotError):
    """Configuration is missing or malformed."""


class InvalidRequest(RewardbotError):
    """A reward request was refused; ``field_errors`` names each offending field."""

    def __init__(self, field_errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in field_errors.items()))
        self.field_errors = dict(field_errors)


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
