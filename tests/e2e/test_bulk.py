"""Bulk rewards: several people in one request, one thread, one decision, one card each."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.domain import Status
from bot.offline.emulator import SlackEmulator
from bot.slack.ids import APPROVE_ACTION, CANCEL_ACTION, REJECT_ACTION, RETRY_ACTION
from providers.base import OrderRequest, OrderResult, SendLog
from providers.errors import OrderDeclined
from providers.sandbox import SandboxProvider
from tests.slack_stack import (
    ARJUN,
    GOOD_VALUES,
    HELPER_BOT,
    JANE,
    LIN,
    MAYA,
    OMAR,
    TEAM,
    Stack,
    redeem_urls,
    sandbox_stack,
)
from tests.support import POLICY, policy_stack, top_level

BULK = {**GOOD_VALUES, "more_recipients": [OMAR, LIN]}


async def test_one_request_one_approval_each_recipient_their_own_card(stack: Stack) -> None:
    await stack.request_reward(BULK)
    # Lin is a recipient, so only Arjun can approve all three: one card, one summary.
    await stack.emulator.wait_for(lambda: stack.ws.dm_messages(ARJUN), 5, "Arjun's card")
    await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
    assert not [m for m in stack.ws.dm_messages(LIN) if "asks you to approve" in m.text]
    [summary] = top_level(stack)
    assert "Rewards #1-#3" in str(summary.blocks) and "25.00 GBP each" in str(summary.blocks)
    assert "rewards #1-#3" in stack.ws.ephemerals(MAYA)[0].text  # the confirmation

    await stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION)
    for request_id in (1, 2, 3):
        await stack.wait_status(request_id, Status.FULFILLED)
    assert stack.sandbox.order_count == 3
    urls = [redeem_urls(stack.ws.dm_messages(who)) for who in (JANE, OMAR, LIN)]
    assert all(len(u) == 1 for u in urls) and len({u[0] for u in urls}) == 3
    everywhere_else = stack.everything_visible_outside(JANE)
    assert urls[0][0] not in everywhere_else
    await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
    [summary] = top_level(stack)
    rows = str(summary.blocks)
    for who in (JANE, OMAR, LIN):
        assert f"<@{who}>: :gift: Delivered" in rows
    replies = [m.text for m in stack.ws.thread_replies(TEAM, summary.ts)]
    assert any(r.startswith(f"<@{OMAR}>'s card: :gift: Delivered") for r in replies)
    # The approval was one decision for all three: one reply says so, not three.
    approvals = [r for r in replies if "Approved by" in r]
    assert approvals == [
        f"All 3 rewards: Approved by <@{ARJUN}>. Ordering the gift card from sandbox…"
    ]
    for request_id in (1, 2, 3):
        approvals = [
            e.actor
            for e in await stack.runtime.store.events(request_id)
            if (e.from_status, e.to_status) == (Status.PENDING_APPROVAL, Status.APPROVED)
        ]
        assert approvals == [ARJUN], request_id


class _DeclinesOmar(SandboxProvider):
    declining = True

    async def place_order(self, order: OrderRequest, sends: SendLog | None = None) -> OrderResult:
        if self.declining and order.recipient.slack_user_id == OMAR:
            raise OrderDeclined("The issuer declined this card.")
        return await super().place_order(order, sends)


async def test_partial_failure_is_reported_per_recipient_and_retried_alone(
    emulator: SlackEmulator, database: str
) -> None:
    provider = _DeclinesOmar(completion_delay=0.05)
    async with sandbox_stack(emulator, database, provider) as stack:
        await stack.request_reward(BULK)
        await stack.emulator.wait_for(lambda: stack.ws.dm_messages(ARJUN), 5, "the card")
        await stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION)
        await stack.wait_status(2, Status.FAILED)
        await stack.wait_status(1, Status.FULFILLED)
        await stack.wait_status(3, Status.FULFILLED)
        await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
        [summary] = top_level(stack)
        assert f"<@{OMAR}>: :x: Failed" in str(summary.blocks)
        card = stack.approval_card(ARJUN)
        assert f"<@{OMAR}>'s card: the order failed" in str(card.blocks)
        # The retry button names Omar's request only.
        provider.declining = False
        await stack.click(ARJUN, card, RETRY_ACTION)
        await stack.wait_status(2, Status.FULFILLED)
        assert stack.sandbox.order_count == 3 and len(redeem_urls(stack.ws.dm_messages(OMAR))) == 1


async def test_one_rejection_or_cancellation_covers_the_whole_request(stack: Stack) -> None:
    await stack.request_reward({**GOOD_VALUES, "more_recipients": [OMAR]})
    await stack.emulator.wait_for(lambda: stack.ws.dm_messages(LIN), 5, "Lin's card")
    await stack.click(LIN, stack.approval_card(LIN), REJECT_ACTION)
    await stack.emulator.wait_for(lambda: stack.ws.current_view(LIN), 5, "the reason modal")
    await stack.emulator.driver.submit_view(LIN, {"reason": "One at a time"})
    for request_id in (1, 2):
        await stack.wait_status(request_id, Status.REJECTED)
    # One reply and one word to the requester for the whole request.
    await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
    [summary] = top_level(stack)
    replies = [m.text for m in stack.ws.thread_replies(TEAM, summary.ts)]
    assert [r for r in replies if "Rejected" in r] == [
        f"All 2 rewards: :no_entry_sign: Rejected by <@{LIN}>. Reason: One at a time"
    ]
    told = [m.text for m in stack.ws.dm_messages(MAYA) if "rejected" in m.text]
    assert told == [
        "Your rewards #1-#2: 25.00 GBP Sandbox Books each for 2 people were rejected by "
        f"<@{LIN}>. Reason: One at a time"
    ]

    await stack.request_reward({**GOOD_VALUES, "amount": "30", "more_recipients": [OMAR]})
    await stack.wait_status(4, Status.PENDING_APPROVAL)
    await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
    await stack.click(MAYA, top_level(stack)[-1], CANCEL_ACTION)
    for request_id in (3, 4):
        await stack.wait_status(request_id, Status.CANCELLED)
    assert stack.sandbox.order_count == 0


async def test_bad_extra_recipients_are_refused_inline_naming_them(stack: Stack) -> None:
    await stack.request_reward({**GOOD_VALUES, "more_recipients": [OMAR, HELPER_BOT]})
    assert "helperbot: Bots cannot receive rewards" in stack.ws.view_errors(MAYA).get(
        "more_recipients", ""
    )
    await stack.emulator.driver.close_view(MAYA)
    # Arjun and Lin are both recipients: nobody could approve all of them together.
    await stack.request_reward({**GOOD_VALUES, "more_recipients": [ARJUN, LIN]})
    assert "Nobody can approve all of these" in stack.ws.view_errors(MAYA)["more_recipients"]
    assert not stack.ws.messages(TEAM)


async def test_the_whole_request_must_fit_the_budget(
    emulator: SlackEmulator, database: str, tmp_path: Path
) -> None:
    async with policy_stack(emulator, database, tmp_path) as stack:
        # 3 x 90 = 270 fits in the 300 of team eng; 3 x 101 would not.
        await stack.request_reward({**GOOD_VALUES, "amount": "101", "more_recipients": [OMAR, LIN]})
        assert "300.00 GBP left of 300.00 GBP" in stack.ws.view_errors(MAYA)["amount"]
        await stack.emulator.driver.close_view(MAYA)
        await stack.request_reward({**GOOD_VALUES, "amount": "90", "more_recipients": [OMAR, LIN]})
        await stack.wait_status(3, Status.PENDING_APPROVAL)
        assert [
            r.budget_month is not None
            for r in await stack.runtime.store.batch(await stack.runtime.store.get(1))
        ] == [True, True, True]


async def test_a_cancel_racing_an_approval_never_splits_the_batch(stack: Stack) -> None:
    await stack.request_reward(BULK)
    await stack.emulator.wait_for(lambda: stack.ws.dm_messages(ARJUN), 5, "the card")
    await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
    await asyncio.gather(
        stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION),
        stack.click(MAYA, top_level(stack)[0], CANCEL_ACTION),
    )
    await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 10)
    statuses = {(await stack.runtime.store.get(i)).status for i in (1, 2, 3)}
    assert statuses in ({Status.CANCELLED}, {Status.FULFILLED}), statuses
    assert stack.sandbox.order_count == (3 if statuses == {Status.FULFILLED} else 0)


async def test_two_step_batch_needs_a_second_approver_for_everyone(
    emulator: SlackEmulator, database: str, tmp_path: Path
) -> None:
    # Finn and Omar give second approvals, and both are recipients: each could give the other's
    # second approval, but nobody could give it for both, and the batch is decided at once.
    policy = POLICY.replace(
        'second_approvers = ["S0FINANCE"]', 'second_approvers = ["U0FINN", "U0OMAR"]'
    )
    async with policy_stack(emulator, database, tmp_path, policy) as stack:
        values = {**GOOD_VALUES, "recipient": "U0FINN", "amount": "150", "more_recipients": [OMAR]}
        await stack.request_reward(values)
        assert "nobody else could give the second" in stack.ws.view_errors(MAYA)["more_recipients"]
        assert not stack.ws.messages(TEAM)


async def test_picking_people_gives_each_an_amount_field_of_their_own(stack: Stack) -> None:
    await stack.emulator.driver.slash_command(MAYA, TEAM)
    await stack.emulator.wait_for(lambda: stack.ws.current_view(MAYA), 5, "the reward modal")
    view_id = stack.ws.current_view(MAYA)["id"]  # type: ignore[index]
    reply = await stack.emulator.driver.choose_in_view(MAYA, "more_recipients", [OMAR, LIN])
    assert reply.responded

    def labels() -> list[str]:
        view = stack.ws.current_view(MAYA) or {}
        return [b["label"]["text"] for b in view.get("blocks", []) if b["type"] == "input"]

    await stack.emulator.wait_for(
        lambda: "Amount for Omar Outsider" in labels(), 5, "the redrawn form"
    )
    assert stack.ws.current_view(MAYA)["id"] == view_id  # type: ignore[index]
    assert labels()[labels().index("Amount") + 1 :][:2] == [
        "Amount for Omar Outsider",
        "Amount for Lin Approver",
    ]

    # A bad amount of one person's is refused on their field.
    own = {**BULK, "amount": "25", f"amount_for_{OMAR}": "forty"}
    await stack.emulator.driver.submit_view(MAYA, own)
    assert "is not a number" in stack.ws.view_errors(MAYA)[f"amount_for_{OMAR}"]
    await stack.emulator.driver.submit_view(MAYA, {**own, f"amount_for_{OMAR}": "40"})
    await stack.emulator.wait_for(lambda: stack.ws.dm_messages(ARJUN), 5, "the card")
    batch = await stack.runtime.store.batch(await stack.runtime.store.get(1))
    assert [(r.recipient_id, str(r.face_value)) for r in batch] == [
        (JANE, "25.00 GBP"),
        (OMAR, "40.00 GBP"),
        (LIN, "25.00 GBP"),
    ]


async def test_different_amounts_one_per_person_in_order(stack: Stack) -> None:
    await stack.request_reward({**BULK, "amount": "25; 40, 30"})
    await stack.emulator.wait_for(lambda: stack.ws.dm_messages(ARJUN), 5, "the card")
    batch = await stack.runtime.store.batch(await stack.runtime.store.get(1))
    assert [(r.recipient_id, str(r.face_value)) for r in batch] == [
        (JANE, "25.00 GBP"),
        (OMAR, "40.00 GBP"),
        (LIN, "30.00 GBP"),
    ]
    card = str(stack.approval_card(ARJUN).blocks)
    assert "different amounts" in card and f"<@{OMAR}> · 40.00 GBP:" in card
    await stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION)
    await stack.wait_status(2, Status.FULFILLED)
    assert "40.00 GBP" in (await stack.emulator.wait_for_dm(OMAR, "sent you a reward")).text


async def test_amounts_must_be_one_or_one_per_person(stack: Stack) -> None:
    for amount, message in [
        ("25; 40", "one for each of the 3 people"),
        ("25; 40; 501", "5 to 500 GBP"),
        ("1,250; 5; 5", "5 to 500 GBP"),  # a thousands separator is not a list
    ]:
        await stack.request_reward({**BULK, "amount": amount})
        assert message in stack.ws.view_errors(MAYA).get("amount", ""), amount
        await stack.emulator.driver.close_view(MAYA)
    assert not stack.ws.messages(TEAM)


async def test_one_member_above_the_threshold_makes_the_batch_need_two_approvals(
    emulator: SlackEmulator, database: str, tmp_path: Path
) -> None:
    async with policy_stack(emulator, database, tmp_path) as stack:
        await stack.request_reward({**GOOD_VALUES, "amount": "50; 120", "more_recipients": [OMAR]})
        await stack.wait_status(2, Status.PENDING_APPROVAL)
        batch = await stack.runtime.store.batch(await stack.runtime.store.get(1))
        assert [r.approvals_required for r in batch] == [2, 2]
