"""Which request a log line is about: the request id (one per inbound Slack request, Socket
Mode envelope, provider webhook or job run) and the reward id, carried in context variables so
that every record logged while handling them says so, whichever library logs it.

Set with :func:`log_context` around the work (each asyncio task keeps its own copy), or give a
task its own with :func:`context_for`; :class:`LogContextFilter` copies them onto each record.
"""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

_REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "rewardbot_request_id", default=None
)
_REWARD_ID: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "rewardbot_reward_id", default=None
)


def new_request_id() -> str:
    """A short id for a request that brings none of its own (12 hex digits)."""
    return uuid.uuid4().hex[:12]


@contextmanager
def log_context(request_id: str, reward_id: int | None = None) -> Iterator[None]:
    """Log everything inside the block as being about ``request_id`` (and ``reward_id``)."""
    request_token = _REQUEST_ID.set(request_id)
    reward_token = _REWARD_ID.set(reward_id)
    try:
        yield
    finally:
        _REWARD_ID.reset(reward_token)
        _REQUEST_ID.reset(request_token)


def context_for(request_id: str, reward_id: int | None) -> contextvars.Context:
    """A copy of the current context about ``request_id`` and ``reward_id``, for a task that
    lives on its own (``asyncio.create_task(..., context=...)``)."""
    context = contextvars.copy_context()
    context.run(_REQUEST_ID.set, request_id)
    context.run(_REWARD_ID.set, reward_id)
    return context


class LogContextFilter(logging.Filter):
    """Adds ``request_id`` and ``reward_id`` to every record logged while they are set (a
    record about no request gets neither)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id, reward_id = _REQUEST_ID.get(), _REWARD_ID.get()
        if request_id is not None:
            record.request_id = request_id
        if reward_id is not None:
            record.reward_id = reward_id
        return True
