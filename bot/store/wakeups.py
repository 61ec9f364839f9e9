"""Waking every process's job runner when a job is queued or made due, wherever that happened.

On PostgreSQL several processes share the queue: the one that queued a job (or took the
provider's webhook that makes an order's job due now) may not be the one free to run it. Each
transaction that does so sends a ``NOTIFY``, delivered on commit; each process ``LISTEN``s on
one connection of its own and wakes its runner. Polling (the runner's idle timer) stays the
fallback: a notification lost while a listener reconnects delays a job, never loses it.
A SQLite file has one process, woken by :attr:`StoreBase.on_jobs_queued`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.backends import PostgresBackend, pooled_connection
from bot.store.base import StoreBase
from bot.store.database import database_problem
from bot.store.sql import Connection

log = logging.getLogger(__name__)

JOBS_CHANNEL = "rewardbot_jobs"
# The listening session's ``application_name``.
LISTENER_NAME = "rewardbot job wake-ups"
# How often an idle listening connection is checked (a connection cut off on the way, not
# ended by the server, is not noticed otherwise).
_CHECK_EVERY = 15.0
# Reconnecting after the listening connection was lost: first pause, longest pause.
_RETRY_FIRST, _RETRY_LONGEST = 0.5, 15.0


async def notify_jobs_queued(db: Connection) -> None:
    """In a write transaction that queued a job or made one due: tell every process once it
    commits (PostgreSQL folds the same notification made many times in one transaction)."""
    if db.is_postgres:
        await db.run(f"NOTIFY {JOBS_CHANNEL}")


class JobWakeups(StoreBase):
    """Listening for the jobs other processes queued."""

    async def watch_jobs_queued(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` whenever any process queued or nudged a job, until cancelled
        (PostgreSQL; returns at once on SQLite). Reconnects after the connection is lost."""
        if not isinstance(self._backend, PostgresBackend):
            return
        engine = self._backend.engine
        pause = _RETRY_FIRST
        while True:
            started = time.monotonic()
            try:
                await _listen(engine, wake)
            except Exception as exc:  # whatever broke the connection: listen again
                if time.monotonic() - started > _CHECK_EVERY:
                    pause = _RETRY_FIRST  # it had been listening: a new outage
                log.warning(
                    "listening for queued jobs failed (%s); again in %.1fs",
                    database_problem(exc),
                    pause,
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, _RETRY_LONGEST)


async def _listen(engine: AsyncEngine, wake: Callable[[], None]) -> None:
    # Never cut off mid-connect by a stop: asyncpg would leave a future nobody reads.
    async with pooled_connection(engine) as connection:
        try:
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            # Ended by the server (an admin, a failover): known at once, not at the next check.
            closed = asyncio.Event()
            driver.add_termination_listener(lambda *_: closed.set())
            # So an admin (and pg_stat_activity) can tell this session from the pool's.
            await driver.execute(f"SET application_name = '{LISTENER_NAME}'")
            await driver.add_listener(JOBS_CHANNEL, lambda *_: wake())
            wake()  # anything queued while nobody here was listening
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closed.wait(), _CHECK_EVERY)
                if closed.is_set():
                    raise ConnectionError("the listening connection was closed")
                await asyncio.wait_for(driver.fetchval("SELECT 1"), _CHECK_EVERY)
        finally:
            # Never back to the pool: it would carry the listener to its next user.
            await connection.invalidate()
