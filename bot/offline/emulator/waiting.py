"""Polling helper: the bot works asynchronously, so tests wait for visible outcomes.

On timeout the error lists recent workspace activity, which is usually enough to see
why the expected message never arrived (wrong user, wrong text, an error message).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any


async def wait_for(
    predicate: Callable[[], Any],
    *,
    timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for polling state, not for I/O
    interval: float = 0.01,
    description: str = "condition",
    diagnostics: Callable[[], list[str]] | None = None,
) -> Any:
    """Poll ``predicate`` (sync or async) until truthy; return its value or time out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() >= deadline:
            lines = diagnostics() if diagnostics else []
            recent = "\n  ".join(lines) or "(no messages)"
            raise TimeoutError(
                f"timed out after {timeout}s waiting for {description}; recent:\n  {recent}"
            )
        await asyncio.sleep(interval)
