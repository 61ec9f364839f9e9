"""The Slack listeners still at work after their request was answered, so a stop waits for them.

Bolt answers Slack as soon as a listener acks and runs the rest of it in a task of its own
(``process_before_response`` off): the answer never waits on a Web API call. What that gives
up is that the request's end was the listener's end; a stop would cut off a listener that acked
an approval but had not stored it yet. Bolt tells this tracker when each listener starts and
ends (its listener start and completion handlers, run inside the listener's task), and the
runtime's close waits for the ones still running before it closes the database under them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.listener.async_listener_completion_handler import (
    AsyncListenerCompletionHandler,
)
from slack_bolt.listener.async_listener_start_handler import AsyncListenerStartHandler

log = logging.getLogger(__name__)


class ListenersInFlight:
    """The tasks of the listeners running now; Bolt reports to it through
    :attr:`start_handler` and :attr:`completion_handler`."""

    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()
        self.start_handler = _Started(self._running)
        self.completion_handler = _Ended(self._running)

    @property
    def count(self) -> int:
        return len(self._running)

    async def drain(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for the listeners still running; cancel the rest."""
        if self._running:
            log.info("waiting for %s Slack listener(s) to finish", len(self._running))
        deadline = asyncio.get_running_loop().time() + grace
        # Again and again: a request answered just before the stop may start one meanwhile.
        while self._running:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                late = set(self._running)
                for task in late:
                    task.cancel()
                log.warning(
                    "cut off %s Slack listener(s) still running after %.0fs", len(late), grace
                )
                await asyncio.wait(late)
                return
            await asyncio.wait(set(self._running), timeout=left)


class _Started(AsyncListenerStartHandler):
    def __init__(self, running: set[asyncio.Task[Any]]) -> None:
        self._running = running

    async def handle(self, request: Any, response: Any) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
            # However the task ends (cancelled before its completion handler ran, too).
            task.add_done_callback(self._running.discard)


class _Ended(AsyncListenerCompletionHandler):
    def __init__(self, running: set[asyncio.Task[Any]]) -> None:
        self._running = running

    async def handle(self, request: Any, response: Any) -> None:
        self._running.discard(asyncio.current_task())
