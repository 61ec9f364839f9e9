"""Text for Slack's mrkdwn: user text made inert, quoted, and times shown in each reader's zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime

# A section's text is at most 3000 characters; the rest of the section needs about 400.
_QUOTE_MAX_CHARS = 2500


def escape(text: str) -> str:
    """Make user text inert in mrkdwn: ``&``, ``<`` and ``>`` are Slack's control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def quote(text: str) -> str:
    """User text as an escaped mrkdwn quote, short enough for a section (3000 characters)."""
    quoted = "\n".join("> " + line for line in escape(text).splitlines() or [""])
    if len(quoted) <= _QUOTE_MAX_CHARS:
        return quoted
    # Cut without leaving half an entity such as "&am" behind.
    return re.sub(r"&[a-z]*$", "", quoted[: _QUOTE_MAX_CHARS - 1]) + "…"


def when(moment: datetime) -> str:
    """A time as Slack shows it to each reader, in their own time zone."""
    fallback = f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"
