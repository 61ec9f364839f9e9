"""The bot's wall clock: ``now()`` everywhere the core reads the time of day.

Nothing exactly-once depends on this clock being right (claims are fenced by their lease token,
not by time), but leases, schedules and deadlines are written with it. A wall clock can step
(an NTP correction, a resumed VM), and tests must be able to make it step in a real
``rewardbot serve`` process: ``REWARDBOT_TEST_CLOCK_OFFSET_FILE`` names a file holding a number
of seconds (may be negative) added to the system clock. The file is re-read when it changes, so
a test steps a running process's clock by rewriting it. It is a test hook, never a setting.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

OFFSET_FILE_VARIABLE = "REWARDBOT_TEST_CLOCK_OFFSET_FILE"


class _SteppableClock:
    def __init__(self) -> None:
        self._file: Path | None = None
        self._stamp: tuple[int, int] | None = None
        self._offset = timedelta(0)

    def use_offset_file(self, path: str | None) -> None:
        self._file = Path(path) if path else None
        self._stamp = None
        self._offset = timedelta(0)

    def now(self) -> datetime:
        if self._file is not None:
            self._refresh()
        return datetime.now(UTC) + self._offset

    def _refresh(self) -> None:
        assert self._file is not None
        try:
            status = self._file.stat()
        except OSError:
            self._offset, self._stamp = timedelta(0), None
            return
        stamp = (status.st_mtime_ns, status.st_size)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._offset = timedelta(seconds=float(self._file.read_text().strip() or 0))
        except (OSError, ValueError):
            self._offset = timedelta(0)


_CLOCK = _SteppableClock()
_CLOCK.use_offset_file(os.environ.get(OFFSET_FILE_VARIABLE))


def now() -> datetime:
    """The current time, in UTC."""
    return _CLOCK.now()


def use_offset_file(path: str | None) -> None:
    """Tests: step this process's clock by the seconds written in ``path`` (``None``: off)."""
    _CLOCK.use_offset_file(path)
