"""Many clicks, one decision: concurrent approvers, double-clicks and Slack's own retries."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.domain import Status
from bot.emulator import SlackEmulator
from bot.local import running_bot
from bot.slack_views import APPROVE_ACTION, REJECT_ACTION
from providers.sandbox import SandboxProvider
from tests.e2e.conftest import ARJUN, GOOD_VALUES, JANE, LIN, OMAR, Stack

DECIDERS = (ARJUN, LIN, OMAR)


async def test_fifty_concurrent_approve_clicks_make_one_decision_and_one_order(
    emulator: SlackEmulator, database: Path
) -> None:
    sandbox = SandboxProvider(completion_delay=0.05)
    async with running_bot(
        emulator, database=database, approvers=DECIDERS, providers={"sandbox": sandbox}
    ) as runtime:
        stack = Stack(emulator, runtime, sandbox)
        await stack.request_reward(GOOD_VALUES)
        await emulator.wait_for(
            lambda: all(stack.ws.dm_messages(d) for d in DECIDERS), 5, "three cards"
        )
        cards = {d: stack.approval_card(d) for d in DECIDERS}
        clicks = [
            emulator.driver.click_button(
                decider,
                cards[decider].channel,
                cards[decider].ts,
                APPROVE_ACTION if i % 5 else REJECT_ACTION,
            )
            for i in range(50)
            for decider in [DECIDERS[i % 3]]
        ]
        replies = await asyncio.gather(*clicks)
        assert all(reply.responded for reply in replies)
        # Slack retrying a click it thinks timed out changes nothing either.
        assert (await emulator.driver.redeliver_last(retry_num=1)).responded

        await emulator.wait_for_dm(JANE, "sent you a reward")
        await asyncio.wait_for(runtime.jobs.wait_idle(), 15)

        request = await runtime.store.get(1)
        assert request.status is Status.FULFILLED
        decisions = [
            e
            for e in await runtime.store.events(1)
            if e.kind == "transition" and e.from_status is Status.PENDING_APPROVAL
        ]
        assert [(d.to_status, d.actor) for d in decisions] == [
            (Status.APPROVED, request.decided_by)
        ]
        assert sandbox.order_count == 1
        assert len([m for m in stack.ws.dm_messages(JANE) if m.metadata]) == 1
        # Every losing Approve click was told why, privately; Reject clicks opened no decision.
        told = sum(len(stack.ws.ephemerals(d)) for d in DECIDERS)
        assert told >= 50 - 10 - 1  # at most the 10 Reject clicks opened a modal instead
