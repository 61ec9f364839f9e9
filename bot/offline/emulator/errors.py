"""Exceptions of the Slack emulator.

Two different audiences fail differently: the bot under test gets Slack's own
``{"ok": false, "error": ...}`` answers (``ApiError``), while a *test* that asks the
emulator to do something a real user could not do (click a button that is not shown,
pick an option that is not offered) gets a Python exception (``EmulatorError``), so the
test itself is reported as wrong instead of silently exercising an impossible path.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A Web API method refused the call; becomes ``{"ok": false, "error": error}``."""

    def __init__(self, error: str, *messages: str, **extra: Any) -> None:
        super().__init__(error if not messages else f"{error}: {'; '.join(messages)}")
        self.error = error
        self.messages = list(messages)
        self.extra = extra

    def to_body(self) -> dict[str, Any]:
        """Render the error exactly as Slack does (messages go in ``response_metadata``)."""
        body: dict[str, Any] = {"ok": False, "error": self.error, **self.extra}
        if self.messages:
            body["response_metadata"] = {"messages": self.messages}
        return body


class EmulatorError(Exception):
    """A test drove the emulator into something impossible in a real workspace."""
