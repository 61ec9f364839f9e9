"""How listeners reach the bot's parts: one global middleware puts the :class:`Runtime` into
every request's Bolt ``context``, and :func:`runtime_of` takes it out, typed. Another labels
every log line of a request's handling with the request (:mod:`bot.log_context`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from slack_bolt.async_app import AsyncApp, AsyncBoltContext

from bot.log_context import log_context, new_request_id
from bot.runtime import Runtime
from handlers.payloads import AnyPayload

_RUNTIME = "rewardbot_runtime"

log = logging.getLogger(__name__)


def provide_runtime(app: AsyncApp, runtime: Runtime) -> None:
    """Put ``runtime`` into the context of every request ``app`` handles. Registered once,
    before any listener runs; it calls nothing, so each listener still acks first."""

    async def put_runtime_in_context(
        context: AsyncBoltContext, next_: Callable[[], Awaitable[None]]
    ) -> None:
        context[_RUNTIME] = runtime
        await next_()

    app.middleware(put_runtime_in_context)


def label_logs(app: AsyncApp) -> None:
    """Log everything ``app`` does for a request with a request id (the event's own id, or a
    new one: Bolt does not pass a Socket Mode envelope's id on) and, when the payload names
    one, the reward's id."""

    async def label_logs_with_the_request(
        body: dict[str, Any], next_: Callable[[], Awaitable[None]]
    ) -> None:
        try:
            about = AnyPayload.model_validate(body)
        except ValidationError:
            about = AnyPayload()
        with log_context(about.event_id or new_request_id(), about.reward_id):
            log.debug("handling Slack's %s", about.command or about.type or "request")
            await next_()

    app.middleware(label_logs_with_the_request)


def runtime_of(context: AsyncBoltContext) -> Runtime:
    runtime = context.get(_RUNTIME)
    if not isinstance(runtime, Runtime):
        raise LookupError("no runtime in the Bolt context: handlers.register was not called")
    return runtime
