"""Single-use, short-lived trigger ids, as Slack issues with every interaction.

Bots must open modals within 3 seconds of the interaction and may use a trigger only
once; a bot that does slow work before ``views.open`` fails in production, so the
emulator enforces both rules with Slack's error codes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bot.offline.emulator.errors import ApiError
from bot.offline.emulator.ids import trigger_id


@dataclass
class _Trigger:
    user_id: str
    issued_at: float
    used: bool = False


class TriggerRegistry:
    """Issues trigger ids to users and exchanges them (once) for that user."""

    def __init__(self, ttl_seconds: float = 3.0) -> None:
        self.ttl_seconds = ttl_seconds
        self._triggers: dict[str, _Trigger] = {}

    def issue(self, user_id: str) -> str:
        """A fresh trigger id owned by ``user_id``."""
        tid = trigger_id()
        self._triggers[tid] = _Trigger(user_id, time.monotonic())
        return tid

    def exchange(self, tid: str | None) -> str:
        """Consume a trigger and return its user; Slack's errors when that is not allowed."""
        if not tid:
            raise ApiError("invalid_arguments", "missing required field: trigger_id")
        trigger = self._triggers.get(tid)
        if trigger is None:
            raise ApiError("invalid_trigger_id")
        if trigger.used:
            raise ApiError("exchanged_trigger_id")
        if time.monotonic() - trigger.issued_at > self.ttl_seconds:
            raise ApiError("expired_trigger_id")
        trigger.used = True
        return trigger.user_id
