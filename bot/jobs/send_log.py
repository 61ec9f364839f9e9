"""The durable :class:`~providers.base.SendLog`: each order send recorded in the database first.

The adapter calls :meth:`~providers.base.SendLog.sending` right before each request that may
place an order; this log writes that to ``order_sends``, fenced by the job's claim, before the
request leaves. A run taken over after a crash, a restart or by another process therefore
knows exactly what earlier runs sent and whether their answers came back: nothing that
prevents a repeat order lives only in a process's memory.
"""

from __future__ import annotations

from datetime import datetime

from bot import clock
from bot.store import Job, Store
from providers.base import SendLog, SendRecord


class DurableSendLog(SendLog):
    """One order key's sends, in the store, written under ``fence`` (the job's claim)."""

    def __init__(
        self,
        store: Store,
        fence: Job,
        provider: str,
        order_key: str,
        record: SendRecord,
        attributed: frozenset[str],
    ) -> None:
        super().__init__(record, attributed)
        self._store = store
        self._fence = fence
        self._provider = provider
        self._order_key = order_key

    @classmethod
    async def open(
        cls, store: Store, fence: Job, provider: str, order_key: str, attributed: frozenset[str]
    ) -> DurableSendLog:
        return cls(
            store, fence, provider, order_key, await store.send_record(order_key), attributed
        )

    def now(self) -> datetime:
        return clock.now()

    async def _write_send(self, fingerprint: str) -> None:
        await self._store.record_send(self._fence, self._provider, self._order_key, fingerprint)

    async def _write_unanswered(self, answered: bool) -> None:
        await self._store.record_unanswered(self._order_key, answered=answered)

    async def _write_settled(self) -> None:
        await self._store.settle_sends(self._order_key)
