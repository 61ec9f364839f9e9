"""Shared state handed to every Web API method implementation.

Methods are plain functions of ``(ApiContext, args)``; keeping their dependencies in
one small object keeps them easy to test and avoids a god-class server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.offline.emulator.errors import ApiError
from bot.offline.emulator.triggers import TriggerRegistry
from bot.offline.emulator.workspace import Workspace

JSON = dict[str, Any]


@dataclass
class ApiContext:
    """What a method may touch: the workspace, triggers, and socket-mode tickets."""

    workspace: Workspace
    triggers: TriggerRegistry
    issue_socket_url: Callable[[], str]


def require(args: JSON, name: str, error: str = "invalid_arguments") -> str:
    """A required string argument, or the method's documented error if missing."""
    value = args.get(name)
    if value is None or value == "":
        raise ApiError(error, f"missing required field: {name}")
    return str(value)


def optional_str(args: JSON, name: str) -> str | None:
    """An optional argument as a string (form values are always strings anyway)."""
    value = args.get(name)
    return None if value is None or value == "" else str(value)
