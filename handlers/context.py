"""How listeners reach the bot's parts: one global middleware puts the :class:`Runtime` into
every request's Bolt ``context``, and :func:`runtime_of` takes it out, typed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncApp, AsyncBoltContext

from bot.runtime import Runtime

_RUNTIME = "rewardbot_runtime"


def provide_runtime(app: AsyncApp, runtime: Runtime) -> None:
    """Put ``runtime`` into the context of every request ``app`` handles. Registered once,
    before any listener runs; it calls nothing, so each listener still acks first."""

    async def put_runtime_in_context(
        context: AsyncBoltContext, next_: Callable[[], Awaitable[None]]
    ) -> None:
        context[_RUNTIME] = runtime
        await next_()

    app.middleware(put_runtime_in_context)


def runtime_of(context: AsyncBoltContext) -> Runtime:
    runtime = context.get(_RUNTIME)
    if not isinstance(runtime, Runtime):
        raise LookupError("no runtime in the Bolt context: handlers.register was not called")
    return runtime
