"""Slack gets its answer as soon as a listener acks: never after a Web API call, however slow
Slack's Web API is today. A listener that acked is not cut off by a stop: the stop waits for it.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from typing import Any

from bot.offline.emulator import SlackEmulator
from bot.slack.ids import APPROVE_ACTION
from providers.sandbox import SandboxProvider
from tests.slack_stack import ARJUN, GOOD_VALUES, MAYA, TEAM, Stack, sandbox_stack

# How slow each Web API call is made; an answer that waited on one would take at least this.
# (Two in a row stay within the 3 s a trigger id lasts, so the form still opens.)
SLOW = 1.2


def _slow(emulator: SlackEmulator, *methods: str) -> None:
    async def wait(_: Any) -> None:
        await asyncio.sleep(SLOW)

    for method in methods:
        emulator.on_next_call(method, wait)


async def test_reward_is_answered_before_slack_answers_the_calls_it_makes(stack: Stack) -> None:
    _slow(stack.emulator, "users.info", "views.open")
    started = time.monotonic()
    reply = await stack.emulator.driver.slash_command(MAYA, TEAM)
    answered = time.monotonic() - started
    assert reply.responded and answered < SLOW / 2, (reply, answered)
    # The rest went on after the answer: the form opened once Slack answered.
    await stack.emulator.wait_for(
        lambda: stack.ws.current_view(MAYA), 3 * SLOW, "the reward form to open"
    )


async def test_a_refused_click_is_answered_before_the_refusal_is_posted(stack: Stack) -> None:
    await stack.request_reward(GOOD_VALUES)
    await stack.emulator.wait_for(lambda: stack.ws.dm_messages(ARJUN), 5, "the card")
    card = stack.approval_card(ARJUN)
    _slow(stack.emulator, "chat.postEphemeral")
    started = time.monotonic()
    # A button value that names no request: Arjun is told so once Slack takes the message.
    reply = await stack.emulator.driver.click_button(
        ARJUN, card.channel, card.ts, APPROVE_ACTION, value_override="not-a-request"
    )
    answered = time.monotonic() - started
    assert reply.responded and answered < SLOW / 2, (reply, answered)
    await stack.emulator.wait_for(lambda: stack.refusals(ARJUN), 3 * SLOW, "Arjun's refusal")


async def test_a_stop_waits_for_a_listener_that_acked_and_is_still_at_work(
    emulator: SlackEmulator, database: str, sandbox: SandboxProvider
) -> None:
    release = asyncio.Event()

    async def held(_: Any) -> None:
        await release.wait()

    async with AsyncExitStack() as bot:
        await bot.enter_async_context(sandbox_stack(emulator, database, sandbox))
        emulator.on_next_call("views.open", held)
        assert (await emulator.driver.slash_command(MAYA, TEAM)).responded
        stopping = asyncio.create_task(bot.aclose())
        await asyncio.sleep(0.5)
        assert not stopping.done(), "the stop did not wait for the listener"
        release.set()
        await asyncio.wait_for(stopping, 10)
    # The listener finished its work (the form opened) before the bot closed.
    assert emulator.workspace.current_view(MAYA) is not None
