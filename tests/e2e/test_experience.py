"""Everyday surfaces: confirmation on submit, /reward help and status, scheduled delivery,
the recipient's resend and an approver's retry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.domain import Status
from bot.offline.emulator import SlackEmulator
from bot.slack.ids import CANCEL_ACTION, RESEND_ACTION, RETRY_ACTION
from providers.base import OrderRequest, OrderResult, SendLog
from providers.errors import OutOfStock
from providers.sandbox import SandboxProvider
from tests.slack_stack import (
    ARJUN,
    CONFIRMATION,
    GOOD_VALUES,
    JANE,
    LIN,
    MAYA,
    OMAR,
    TEAM,
    Stack,
    redeem_urls,
    sandbox_stack,
)
from tests.support import sql_execute


async def answer(stack: Stack, user: str, text: str) -> str:
    """Run ``/reward <text>`` and return the private answer it produced."""
    before = len(stack.ws.ephemerals(user))
    await stack.emulator.driver.slash_command(user, TEAM, text=text)
    await stack.emulator.wait_for(
        lambda: len(stack.ws.ephemerals(user)) > before, 5, f"the answer to /reward {text}"
    )
    return stack.ws.ephemerals(user)[-1].text


async def test_requester_is_told_privately_what_happens_next(stack: Stack) -> None:
    await stack.request_reward(GOOD_VALUES)
    await stack.emulator.wait_for(lambda: stack.ws.ephemerals(MAYA), 5, "the confirmation")
    confirmation = stack.ws.ephemerals(MAYA)[0]
    assert confirmation.text.startswith(CONFIRMATION + "1")
    assert "waiting for approval from <@U0ARJUN> or <@U0LIN>" in confirmation.text
    assert "cancel it there" in confirmation.text
    assert not stack.ws.ephemerals(JANE)  # the recipient is not told before the surprise


async def test_help_lists_every_command_privately(stack: Stack) -> None:
    text = await answer(stack, OMAR, "help")
    for command in ("/reward @jane 25", "/reward status", "/reward report", "/reward help"):
        assert command in text
    assert not stack.ws.messages(TEAM)


async def test_status_lists_your_requests_and_one_requests_history(stack: Stack) -> None:
    assert "not requested any rewards yet" in await answer(stack, MAYA, "status")
    await stack.request_and_approve()
    await stack.wait_status(1, Status.FULFILLED)
    await stack.request_reward({**GOOD_VALUES, "amount": "30"})
    await stack.emulator.wait_for(
        lambda: sum("asks you to approve" in m.text for m in stack.ws.dm_messages(LIN)) == 2,
        5,
        "the second card",
    )
    listing = await answer(stack, MAYA, "status")
    assert listing.index("*#2*") < listing.index("*#1*")  # newest first
    assert "Delivered privately" in listing and "Waiting for approval" in listing
    history = await answer(stack, MAYA, "status #1")
    assert ":memo: Requested" in history and "<@U0ARJUN>" in history
    assert "Order placed" in history and "Nothing more to do" in history
    assert "approver approves or rejects it" in await answer(stack, ARJUN, "status 2")
    # Nobody else may read it, and the recipient is not told before the surprise.
    assert "no reward request #2 that you can see" in await answer(stack, OMAR, "status 2")
    assert "no reward request #2 that you can see" in await answer(stack, JANE, "status 2")
    assert "no reward request #99" in await answer(stack, MAYA, "status 99")
    assert "Give a request number" in await answer(stack, MAYA, "status two")


# -- scheduled delivery ----------------------------------------------------------------------


def in_minutes(minutes: float) -> int:
    return int((datetime.now(UTC) + timedelta(minutes=minutes)).timestamp())


async def clock_reaches_delivery_time(stack: Stack, database: str) -> None:
    """Stand-in for waiting until the scheduled time: held jobs become due (since they were
    queued: a time the database already holds in its own format), written as another process
    would write it."""
    await sql_execute(
        database,
        "UPDATE jobs SET run_after = created_at WHERE kind = 'fulfil' AND done_at IS NULL",
    )
    stack.runtime.jobs.wake()


async def test_scheduled_reward_is_held_until_its_time_then_delivered(
    stack: Stack, database: str
) -> None:
    await stack.request_and_approve({**GOOD_VALUES, "deliver_at": in_minutes(60)})
    await stack.wait_status(1, Status.APPROVED)
    await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
    summary = stack.ws.messages(TEAM)[0]
    replies = " ".join(m.text for m in stack.ws.thread_replies(TEAM, summary.ts))
    assert "The sandbox card will be delivered <!date^" in replies
    assert "Delivery scheduled for <!date^" in summary.blocks[1]["elements"][0]["text"]  # type: ignore[index]
    assert stack.sandbox.order_count == 0 and not stack.ws.dm_messages(JANE)
    await clock_reaches_delivery_time(stack, database)
    await stack.wait_status(1, Status.FULFILLED)
    assert stack.sandbox.order_count == 1
    await stack.emulator.wait_for_dm(JANE, "sent you a reward")


async def test_scheduled_reward_can_be_cancelled_by_the_requester_until_then(
    stack: Stack, database: str
) -> None:
    await stack.request_and_approve({**GOOD_VALUES, "deliver_at": in_minutes(60)})
    await stack.wait_status(1, Status.APPROVED)
    await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
    summary = stack.ws.messages(TEAM)[0]
    await stack.click(JANE, summary, CANCEL_ACTION)
    await stack.emulator.wait_for(lambda: stack.refusals(JANE), 5, "Jane's refusal")
    await stack.click(MAYA, summary, CANCEL_ACTION)
    await stack.wait_status(1, Status.CANCELLED)
    await clock_reaches_delivery_time(stack, database)
    await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
    assert stack.sandbox.order_count == 0 and not stack.ws.dm_messages(JANE)
    events = await stack.runtime.store.events(1)
    assert [(e.to_status, e.actor) for e in events if e.to_status][-1] == (
        Status.CANCELLED,
        MAYA,
    )


async def test_delivery_times_too_soon_or_too_far_are_refused_inline(stack: Stack) -> None:
    for when, message in [
        (in_minutes(-5), "at least 10 minutes from now"),
        (in_minutes(60 * 24 * 400), "within the next year"),
    ]:
        await stack.request_reward({**GOOD_VALUES, "deliver_at": when})
        assert message in stack.ws.view_errors(MAYA).get("deliver_at", ""), when
        await stack.emulator.driver.close_view(MAYA)
    assert not stack.ws.messages(TEAM)


# -- resend ------------------------------------------------------------------------------------


async def test_recipient_gets_their_card_again_from_the_delivery_dm(stack: Stack) -> None:
    await stack.request_and_approve()
    delivery = await stack.emulator.wait_for_dm(JANE, "sent you a reward")
    await stack.wait_status(1, Status.FULFILLED)  # recorded just after the DM
    link = redeem_urls([delivery])
    # Someone else cannot have it sent (a copy of its button posted in the channel).
    button = [b for b in delivery.blocks or [] if RESEND_ACTION in str(b.get("elements"))]
    assert len(button) == 1
    copy = stack.ws.post(stack.ws.resolve_channel(TEAM), OMAR, "fwd", button, None)  # type: ignore[arg-type]
    await stack.click(OMAR, copy, RESEND_ACTION)
    await stack.emulator.wait_for(lambda: stack.refusals(OMAR), 5, "Omar's refusal")
    assert "Only the person who received this reward" in stack.refusals(OMAR)[0]
    await stack.click(JANE, delivery, RESEND_ACTION)
    await stack.emulator.wait_for(
        lambda: sum("You have received" in m.text for m in stack.ws.dm_messages(JANE)) == 2,
        5,
        "the second delivery",
    )
    again = [m for m in stack.ws.dm_messages(JANE) if "You have received" in m.text][-1]
    assert redeem_urls([again]) == link  # the same card, fetched again from the provider
    assert stack.sandbox.order_count == 1
    assert "sandbox.rewardbot.invalid/redeem" not in stack.everything_visible_outside(JANE)
    await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)  # recorded just after the DM
    assert [e.actor for e in await stack.runtime.store.events(1) if e.kind == "resent"] == [JANE]


# -- retry after failure -------------------------------------------------------------------------


class _OutOfStockOnce(SandboxProvider):
    """Refuses the first order as out of stock, then has stock again."""

    refusals = 1

    async def place_order(self, order: OrderRequest, sends: SendLog | None = None) -> OrderResult:
        if self.refusals:
            self.refusals -= 1
            raise OutOfStock("Out of stock right now.")
        return await super().place_order(order, sends)


async def test_an_approver_retries_a_failed_order_under_a_new_key(
    emulator: SlackEmulator, database: str
) -> None:
    async with sandbox_stack(emulator, database, _OutOfStockOnce(completion_delay=0.05)) as stack:
        await stack.request_and_approve()
        await stack.wait_status(1, Status.FAILED)
        failed = await stack.runtime.store.get(1)
        await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
        card = stack.approval_card(LIN)
        assert "Retry the order" in str(card.blocks)
        copy = stack.ws.post(stack.ws.resolve_channel(TEAM), OMAR, "fwd", card.blocks, None)  # type: ignore[arg-type]
        await stack.click(OMAR, copy, RETRY_ACTION)
        await stack.emulator.wait_for(lambda: stack.refusals(OMAR), 5, "Omar's refusal")
        await stack.click(LIN, card, RETRY_ACTION)
        await stack.wait_status(1, Status.FULFILLED)
        retried = await stack.runtime.store.get(1)
        assert retried.idempotency_key != failed.idempotency_key
        assert (retried.decided_by, stack.sandbox.order_count) == (LIN, 1)
        await stack.emulator.wait_for_dm(JANE, "sent you a reward")


async def test_the_form_names_the_requesters_slack_time_zone(stack: Stack) -> None:
    stack.ws.users[OMAR].tz = "America/New_York"
    await stack.emulator.driver.slash_command(OMAR, TEAM)
    view = await stack.emulator.wait_for(lambda: stack.ws.current_view(OMAR), 5, "the modal")
    [when] = [b for b in view["blocks"] if b["block_id"] == "deliver_at"]
    assert "(America/New_York)" in when["hint"]["text"]
    assert when["element"]["type"] == "datetimepicker"
