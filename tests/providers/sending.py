"""Send logs and a transport for the adapters' :class:`~providers.base.SendLog` contract tests.

A test that makes several calls for one idempotency key passes the same :class:`SendLog` to
each (it stands in for the bot's database); a test of "the bot restarted" passes a new log that
carries the record the database would hold. These subclasses add what a test needs to watch or
steer: a movable clock, a look at the fake at the moment a send is recorded, a write that fails.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from providers.base import SendLog, SendRecord


class ClockedSendLog(SendLog):
    """A send log whose clock (``now()``: what the record's times are read against) a test
    moves forward by setting ``offset``."""

    def __init__(
        self,
        record: SendRecord | None = None,
        attributed: frozenset[str] = frozenset(),
        *,
        offset: timedelta = timedelta(0),
    ) -> None:
        super().__init__(record, attributed)
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


class WatchedSendLog(SendLog):
    """Calls ``watch`` whenever a send is written to the log (the durable write the bot makes
    before the request may leave) and keeps what it returned, in ``at_write``."""

    def __init__(self, watch: Callable[[], object], record: SendRecord | None = None) -> None:
        super().__init__(record)
        self._watch = watch
        self.at_write: list[object] = []

    async def _write_send(self, fingerprint: str) -> None:
        self.at_write.append(self._watch())


class StoreDown(Exception):
    """The database could not record a send (down, or the job's claim was lost)."""


class FailingSendLog(SendLog):
    """A send log that cannot write a send: nothing may then be sent."""

    async def _write_send(self, fingerprint: str) -> None:
        raise StoreDown("the send could not be recorded")


def unsettled(ago: timedelta, *, sends: int = 1, answered: bool = False) -> SendRecord:
    """What the database holds for a key first (and last) sent ``ago`` whose outcome never came
    back: the process died while the send was in flight, or its answers were lost."""
    at = datetime.now(UTC) - ago
    return SendRecord(
        first_sent_at=at,
        last_sent_at=at,
        sends=sends,
        unsettled_since=at,
        last_answered=answered,
    )


class RefusePosts(httpx.AsyncBaseTransport):
    """Real HTTP, except that a POST whose path ends with ``path_suffix`` fails as a refused
    connection does, while ``refusing``: the request never reaches the server."""

    def __init__(self, path_suffix: str) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._suffix = path_suffix
        self.refusing = True
        self.refused = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.refusing and request.method == "POST" and request.url.path.endswith(self._suffix):
            self.refused += 1
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
