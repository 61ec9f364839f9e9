"""Generators for Slack-shaped identifiers and timestamps.

Tests compare and sort these values, and bots parse them, so they follow Slack's
formats: message ``ts`` is ``"<seconds>.<6 digits>"`` and strictly increasing, view ids
start with ``V``, trigger ids look like ``"<n>.<n>.<hex>"``.
"""

from __future__ import annotations

import itertools
import secrets
import string
import time

_ALNUM = string.ascii_uppercase + string.digits


class TsClock:
    """Issues unique, strictly increasing message timestamps close to the wall clock."""

    def __init__(self) -> None:
        self._last_micros = 0

    def next_ts(self) -> str:
        """Return a new ``"1700000000.000100"``-style timestamp, never repeated."""
        micros = max(int(time.time() * 1_000_000), self._last_micros + 1)
        self._last_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


_counter = itertools.count(1)


def random_id(prefix: str, length: int = 10) -> str:
    """Slack-style opaque id such as ``V0123ABCDEF``."""
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def trigger_id() -> str:
    """A trigger id in Slack's ``"<n>.<n>.<hex>"`` shape; unique within the process."""
    first = f"{next(_counter)}{secrets.randbelow(10**6):06d}"
    return f"{first}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"


def view_hash() -> str:
    """An opaque view hash (Slack's look like ``"156772938.1827394"``)."""
    return f"{int(time.time())}.{secrets.randbelow(10**8)}"


def block_id() -> str:
    """Slack assigns a short random ``block_id`` to blocks sent without one."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(5))


def opaque_token() -> str:
    """Secret used in ticket and response_url paths."""
    return secrets.token_urlsafe(16)
