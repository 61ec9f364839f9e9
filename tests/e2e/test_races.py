"""Many clicks, one decision: concurrent approvers, double-clicks, a racing rejection and
Slack's own retries."""

from __future__ import annotations

import asyncio

from bot.domain import Status
from bot.offline.emulator import SlackEmulator
from bot.slack.ids import APPROVE_ACTION, REJECT_ACTION
from providers.sandbox import SandboxProvider
from tests.slack_stack import ARJUN, GOOD_VALUES, JANE, LIN, MAYA, OMAR, sandbox_stack

DECIDERS = (ARJUN, LIN, OMAR)


async def test_fifty_concurrent_decisions_make_one_decision_and_at_most_one_order(
    emulator: SlackEmulator, database: str
) -> None:
    sandbox = SandboxProvider(completion_delay=0.05)
    async with sandbox_stack(emulator, database, sandbox, DECIDERS) as stack:
        await stack.request_reward(GOOD_VALUES)
        await emulator.wait_for(
            lambda: all(stack.ws.dm_messages(d) for d in DECIDERS), 5, "three cards"
        )
        cards = {d: stack.approval_card(d) for d in DECIDERS}
        # Lin opens the reject modal first, then submits it in the middle of the approvals.
        await stack.click(LIN, cards[LIN], REJECT_ACTION)
        await emulator.wait_for(lambda: stack.ws.current_view(LIN), 5, "the reject modal")
        approvals = [
            emulator.driver.click_button(
                decider, cards[decider].channel, cards[decider].ts, APPROVE_ACTION
            )
            for i in range(49)
            for decider in [DECIDERS[i % 3]]
        ]
        rejection = emulator.driver.submit_view(LIN, {"reason": "over budget"})
        replies = await asyncio.gather(*approvals[:25], rejection, *approvals[25:])
        assert all(reply.responded for reply in replies)
        # Slack retrying a request it thinks timed out changes nothing either.
        assert (await emulator.driver.redeliver_last(retry_num=1)).responded

        await emulator.wait_for(
            lambda: any(
                word in m.text
                for m in stack.ws.dm_messages(MAYA)
                for word in ("was delivered", "was rejected")
            ),
            10,
            "the requester to hear the outcome",
        )
        await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 15)

        request = await stack.runtime.store.get(1)
        decisions = [
            (e.to_status, e.actor)
            for e in await stack.runtime.store.events(1)
            if e.kind == "transition" and e.from_status is Status.PENDING_APPROVAL
        ]
        assert len(decisions) == 1
        decided, decider = decisions[0]
        assert decider == request.decided_by
        deliveries = [m for m in stack.ws.dm_messages(JANE) if m.metadata]
        if decided is Status.APPROVED:
            assert request.status is Status.FULFILLED
            assert (sandbox.order_count, len(deliveries)) == (1, 1)
            assert "already approved" in stack.ws.view_errors(LIN)["reason"]
        else:
            assert (decided, request.status, decider) == (Status.REJECTED,) * 2 + (LIN,)
            assert (sandbox.order_count, len(deliveries)) == (0, 0)
        # Every click that lost was told why, privately.
        assert sum(len(stack.ws.ephemerals(d)) for d in DECIDERS) >= 49 - 1
