"""The whole /reward flow with only Giftronaut enabled, the adapter pointed at the fake API."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.domain import Status
from bot.errors import AlreadyDecided, NotAllowed
from bot.offline.emulator import SlackEmulator
from bot.offline.emulator.workspace import Message
from bot.slack.ids import (
    APPROVE_ACTION,
    CANCEL_ACTION,
    CHECK_AGAIN_ACTION,
    ORDER_AGAIN_ACTION,
    RESEND_ACTION,
    RESEND_EMAIL_ACTION,
    RETRY_ACTION,
)
from tests.fakes.giftronaut import GiftronautState
from tests.slack_stack import ARJUN, JANE, LIN, MAYA, OMAR, TEAM, Stack
from tests.support import address_checks, confirm_new_address, giftronaut_stack

JANES_CARD = {
    "recipient": JANE,
    "card": "giftronaut:branded:10042",
    "amount": "50",
    "message": "For shipping the release",
}


async def test_reward_is_ordered_from_giftronaut_and_emailed_by_it(
    emulator: SlackEmulator,
    database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    state = GiftronautState()
    async with giftronaut_stack(emulator, database, state) as stack:
        runtime = stack.runtime
        ws = stack.ws
        state.drop_next_after_processing()  # the first answer is lost: still one order

        await stack.request_reward(JANES_CARD)
        summary = await emulator.wait_for_message(TEAM, "Reward #1")
        await emulator.wait_for(lambda: ws.dm_messages(ARJUN), 5, "Arjun's card")
        await stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION)

        delivery = await emulator.wait_for_dm(JANE, "sent you a reward")
        assert "giftronaut has emailed the card to you" in str(delivery.blocks)
        await emulator.wait_for(
            lambda: "Delivered" in str(ws.find_message(TEAM, summary.ts).blocks),  # type: ignore[union-attr]
            5,
            "the summary to show delivered",
        )
        await emulator.wait_for_dm(MAYA, "was delivered")

        # Exactly one order at Giftronaut, for Jane's Slack email, completed.
        [order] = state.created_orders
        assert order.body["recipients"] == [{"email": "jane@example.com", "amount": 50}]
        assert order.body["emailSetting"]["message"] == "For shipping the release"
        assert order.status == "COMPLETE"
        assert len(state.seen("POST", "/api/v1/orders/branded-cards")) == 2

        # The card's link went to Jane's inbox only: nowhere in Slack, not even her DM.
        assert order.reward_link is not None
        assert order.reward_link not in stack.everything_visible_outside(JANE)
        assert order.reward_link not in str([m.to_api() for m in ws.dm_messages(JANE)])
        assert order.reward_link not in caplog.text

        request = await runtime.store.get(1)
        assert request.status is Status.FULFILLED
        assert request.provider_order_id == order.order_id
        assert request.charged is not None
        assert request.charged.amount == Decimal("50.00")
        replies = [m.text for m in ws.thread_replies(TEAM, summary.ts)]
        assert "Delivered" in replies[-1], replies


async def test_giftronaut_card_is_emailed_again_by_the_recipient_or_an_approver(
    emulator: SlackEmulator, database: str
) -> None:
    state = GiftronautState()
    async with giftronaut_stack(emulator, database, state) as stack:
        runtime = stack.runtime
        await stack.request_and_approve(JANES_CARD)
        delivery = await emulator.wait_for_dm(JANE, "sent you a reward")
        await stack.wait_status(1, Status.FULFILLED)  # recorded just after the DM
        [order] = state.created_orders

        # Jane asks for it again from her DM: Giftronaut emails the same address.
        await stack.click(JANE, delivery, RESEND_ACTION)
        await emulator.wait_for(lambda: order.resends, 5, "the resend")
        assert order.resends == [{"email": "jane@example.com"}]

        # An approver corrects the address; the requester may not.
        await emulator.driver.slash_command(MAYA, TEAM, text="resend 1 jane@home.example")
        await emulator.wait_for(lambda: stack.refusals(MAYA), 5, "Maya's refusal")
        assert "Only an approver" in stack.refusals(MAYA)[-1]
        await emulator.driver.slash_command(
            ARJUN, TEAM, text="resend #1 <mailto:jane@home.example|jane@home.example>"
        )
        await emulator.wait_for(lambda: stack.ws.ephemerals(ARJUN), 5, "Arjun's answer")
        assert (
            "<@U0JANE> is asked to confirm j***@home.example" in stack.ws.ephemerals(ARJUN)[-1].text
        )
        await emulator.wait_for(lambda: address_checks(stack), 5, "Jane's address check")
        assert len(order.resends) == 1  # nothing goes there before Jane confirms
        await confirm_new_address(stack)
        await emulator.wait_for(lambda: len(order.resends) == 2, 5, "the second resend")
        assert order.resends[1] == {
            "email": "jane@example.com",
            "updatedEmail": "jane@home.example",
        }
        await emulator.wait_for_dm(ARJUN, "emailing reward #1 again to j***@home.example")
        events = [e for e in await runtime.store.events(1) if e.kind == "resent"]
        assert [(e.actor, e.detail) for e in events] == [
            (JANE, {"to": "email"}),
            (ARJUN, {"to": "email j***@home.example", "change": 1}),
        ]
        assert "jane@home.example" not in str([e.detail for e in await runtime.store.events(1)])
        # The recipient and the requester are told where it goes now, masked.
        for person in (JANE, MAYA):
            await emulator.wait_for_dm(person, "to j***@home.example from now on")
        # A second click within a minute does not make Giftronaut send it again.
        await stack.click(JANE, delivery, RESEND_ACTION)
        await emulator.wait_for(
            lambda: "less than a minute ago" in stack.ws.ephemerals(JANE)[-1].text, 5, "cooldown"
        )
        assert len(order.resends) == 2
        # Nor do two of an approver's asks at the same moment: one is proposed, one refused.
        asks = await asyncio.gather(
            runtime.redelivery.ask_for_email(1, LIN, "jane@work.example"),
            runtime.redelivery.ask_for_email(1, LIN, "jane@work.example"),
            return_exceptions=True,
        )
        assert sorted(type(a).__name__ for a in asks) == ["NotAllowed", "str"]
        await confirm_new_address(stack, nth=2)
        await emulator.wait_for(lambda: len(order.resends) == 3, 5, "Lin's resend")
        await asyncio.wait_for(runtime.jobs.wait_idle(), 5)
        assert len(order.resends) == 3


async def test_an_approver_emails_a_card_to_a_corrected_address_from_their_card(
    emulator: SlackEmulator, database: str
) -> None:
    state = GiftronautState()
    async with giftronaut_stack(emulator, database, state) as stack:
        await stack.request_and_approve(JANES_CARD)
        await stack.wait_status(1, Status.FULFILLED)
        [order] = state.created_orders
        card = stack.approval_card(ARJUN)
        await emulator.wait_for(
            lambda: RESEND_EMAIL_ACTION in str(stack.ws.find_message(card.channel, card.ts)),
            5,
            "the card to offer emailing it elsewhere",
        )
        await stack.click(ARJUN, stack.approval_card(ARJUN), RESEND_EMAIL_ACTION)
        await emulator.wait_for(lambda: stack.ws.current_view(ARJUN), 5, "the address modal")

        # Not an address: the field says so and nothing is sent.
        await emulator.driver.submit_view(ARJUN, {"email": "jane at home"}, strict=False)
        assert stack.ws.view_errors(ARJUN) == {"email": "Enter one email address."}
        await emulator.driver.submit_view(ARJUN, {"email": "jane@home.example"})
        # A second address cannot be asked for while the first waits for Jane.
        await stack.click(ARJUN, stack.approval_card(ARJUN), RESEND_EMAIL_ACTION)
        await emulator.driver.submit_view(ARJUN, {"email": "jane@work.example"})
        assert "waiting for its recipient's confirmation" in stack.ws.view_errors(ARJUN)["email"]
        assert order.resends == []
        await confirm_new_address(stack)
        await emulator.wait_for(lambda: order.resends, 5, "the resend")
        assert order.resends == [{"email": "jane@example.com", "updatedEmail": "jane@home.example"}]
        await emulator.wait_for_dm(ARJUN, "emailing reward #1 again to j***@home.example")
        for person in (JANE, MAYA):
            await emulator.wait_for_dm(person, "to j***@home.example from now on")

        # Only the request's approvers may redirect a card.
        with pytest.raises(NotAllowed, match="Only an approver"):
            await stack.runtime.redelivery.emailable(1, MAYA)


def deliveries(stack: Stack, who: str) -> list[Message]:
    """The delivery DMs ``who`` received (their notification text names the gift card)."""
    return [m for m in stack.ws.dm_messages(who) if "gift card from" in m.text]


def _in_hours(hours: float) -> int:
    return int((datetime.now(UTC) + timedelta(hours=hours)).timestamp())


async def test_giftronaut_schedules_the_card_itself_cancellable_until_its_cut_off(
    emulator: SlackEmulator, database: str
) -> None:
    state = GiftronautState()
    async with giftronaut_stack(emulator, database, state) as stack:
        send_at = _in_hours(3)
        await stack.request_and_approve({**JANES_CARD, "deliver_at": send_at})
        await emulator.wait_for(lambda: state.created_orders, 5, "the scheduled order")
        [order] = state.created_orders
        timing = order.body["sendTiming"]
        assert (timing["type"], timing["timezone"]) == ("SCHEDULED", "UTC")
        assert datetime.fromisoformat(timing["scheduledAt"]).replace(tzinfo=UTC) == (
            datetime.fromtimestamp(send_at, UTC)
        )
        await stack.wait_status(1, Status.ORDERING)
        # Nothing polls Giftronaut while the card waits for its send time.
        await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
        polls = len(state.seen("GET", f"/api/v1/orders/{order.order_id}"))
        await asyncio.sleep(0.3)
        assert len(state.seen("GET", f"/api/v1/orders/{order.order_id}")) == polls

        summary = await emulator.wait_for_message(TEAM, "Reward #1")
        await stack.click(MAYA, summary, CANCEL_ACTION)
        await stack.wait_status(1, Status.CANCELLED)
        assert order.status == "CANCELED"
        assert not deliveries(stack, JANE)


async def test_within_giftronauts_cut_off_a_scheduled_card_cannot_be_cancelled(
    emulator: SlackEmulator, database: str
) -> None:
    state = GiftronautState()
    async with giftronaut_stack(emulator, database, state) as stack:
        await stack.request_and_approve({**JANES_CARD, "deliver_at": _in_hours(0.5)})
        await emulator.wait_for(lambda: state.created_orders, 5, "the scheduled order")
        await stack.wait_status(1, Status.ORDERING)
        await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
        # Less than an hour before sending: the thread no longer offers Cancel.
        summary = await emulator.wait_for_message(TEAM, "Reward #1")
        assert "cancel_request" not in str(summary.blocks)
        assert "Delivery scheduled for <!date^" in str(summary.blocks)
        with pytest.raises(AlreadyDecided, match="can no longer be cancelled"):
            await stack.runtime.rewards.cancellation.cancel(1, MAYA)
        assert state.created_orders[0].status == "PENDING"
        assert await stack.status(1) is Status.ORDERING


BULK = {
    "recipient": JANE,
    "more_recipients": [OMAR, LIN],
    "card": "giftronaut:branded:10042",
    "amount": "50; 25; 100",
    "message": "For shipping the release",
}


def summary_row(stack: Stack, who: str) -> str:
    """What the request's summary says of ``who``'s card."""
    [summary] = [m for m in stack.ws.messages(TEAM) if m.thread_ts in (None, m.ts)]
    found = re.search(rf"<@{who}> · [^:]*: ([^·']*)", str(summary.blocks))
    assert found, summary.blocks
    return found.group(1).strip()


async def test_a_bulk_reward_is_one_giftronaut_order_with_a_card_each(
    emulator: SlackEmulator, database: str
) -> None:
    state = GiftronautState()
    async with giftronaut_stack(emulator, database, state) as stack:
        state.drop_next_after_processing()  # the first answer is lost: still one order
        await stack.request_reward(BULK)
        await emulator.wait_for(lambda: stack.ws.dm_messages(ARJUN), 5, "Arjun's card")
        await stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION)
        for request_id in (1, 2, 3):
            await stack.wait_status(request_id, Status.FULFILLED)

        # One order for the three of them (sent twice: the replay of the lost answer), each
        # with their own amount and Slack email, looked after by one job: one set of polls.
        [order] = state.created_orders
        assert order.body["recipients"] == [
            {"email": "jane@example.com", "amount": 50},
            {"email": "omar@example.com", "amount": 25},
            {"email": "lin@example.com", "amount": 100},
        ]
        assert len(state.seen("POST", "/api/v1/orders/branded-cards")) == 2
        assert len(state.seen("GET", f"/api/v1/orders/{order.order_id}")) == 2
        requests = [await stack.runtime.store.get(i) for i in (1, 2, 3)]
        assert {r.provider_order_id for r in requests} == {order.order_id}
        # The order's charge is split over the cards, adding up to what Giftronaut charged.
        charged = [r.charged.amount for r in requests if r.charged]
        assert charged == [Decimal("50.00"), Decimal("25.00"), Decimal("100.00")]
        assert sum(charged) == order.cost_usd
        placed = [e for e in await stack.runtime.store.events(2) if e.kind == "order_placed"]
        assert [e.detail for e in placed] == [
            {"provider_order_id": order.order_id, "cards_in_order": 3}
        ]

        # Each recipient hears privately that their own card is in their inbox.
        for who in (JANE, OMAR, LIN):
            delivery = await emulator.wait_for_dm(who, "sent you a reward")
            assert "giftronaut has emailed the card to you" in str(delivery.blocks)
        await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
        for who in (JANE, OMAR, LIN):
            assert summary_row(stack, who) == ":gift: Delivered privately to the recipient"

        # Two cards of one order at one address would be mixed up: refused.
        await emulator.driver.slash_command(ARJUN, TEAM, text="resend 2 jane@example.com")
        await emulator.wait_for(lambda: stack.ws.ephemerals(ARJUN), 5, "Arjun's refusal")
        assert "already goes to that address" in stack.ws.ephemerals(ARJUN)[-1].text
        # An approver corrects Omar's address; Omar's own resend later goes to the new one.
        # Giftronaut resends his entry of the shared order only, each time.
        await emulator.driver.slash_command(ARJUN, TEAM, text="resend 2 omar@home.example")
        await confirm_new_address(stack, OMAR)
        await emulator.wait_for(lambda: order.resends, 5, "the corrected resend")
        delivery = await emulator.wait_for_dm(OMAR, "sent you a reward")
        await stack.click(OMAR, delivery, RESEND_ACTION)
        await emulator.wait_for(lambda: len(order.resends) == 2, 5, "Omar's resend")
        assert order.resends == [
            {"email": "omar@example.com", "updatedEmail": "omar@home.example"},
            {"email": "omar@home.example"},
        ]


async def test_bulk_failures_at_giftronaut_are_per_recipient_and_recovered_alone(
    emulator: SlackEmulator, database: str
) -> None:
    state = GiftronautState()
    state.unissued.add("lin@example.com")  # Giftronaut completes the order without Lin's card
    emulator.workspace.users[OMAR].email = "omar.example.com"  # Giftronaut cannot email Omar
    async with giftronaut_stack(emulator, database, state) as stack:
        await stack.request_reward(BULK)
        await emulator.wait_for(lambda: stack.ws.dm_messages(ARJUN), 5, "Arjun's card")
        await stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION)
        await stack.wait_status(1, Status.FULFILLED)
        await stack.wait_status(2, Status.FAILED)
        await stack.wait_status(3, Status.NEEDS_REVIEW)
        [order] = state.created_orders
        assert [r["email"] for r in order.body["recipients"]] == [
            "jane@example.com",
            "lin@example.com",
        ]
        await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
        assert summary_row(stack, JANE).startswith(":gift: Delivered")
        assert summary_row(stack, OMAR).startswith(":x: Failed")
        assert summary_row(stack, LIN).startswith(":warning: Needs review")
        lin = await stack.runtime.store.get(3)
        assert lin.failure_reason is not None and "without a card for this" in lin.failure_reason
        assert not deliveries(stack, LIN)

        # Giftronaut support issues Lin's card; Check again looks the shared order up again.
        order.unissued = frozenset()
        await stack.click(ARJUN, stack.approval_card(ARJUN), CHECK_AGAIN_ACTION)
        await stack.wait_status(3, Status.FULFILLED)
        await emulator.wait_for_dm(LIN, "sent you a reward")
        assert len(state.created_orders) == 1
        # Her share of the order's charge, not the whole of it.
        shares = [(await stack.runtime.store.get(i)).charged for i in (1, 3)]
        assert [s.amount if s else None for s in shares] == [Decimal("50.00"), Decimal("100.00")]

        # Omar's email is fixed in Slack; his retry is an order of its own.
        emulator.workspace.users[OMAR].email = "omar@example.com"
        await stack.click(ARJUN, stack.approval_card(ARJUN), RETRY_ACTION)
        await stack.wait_status(2, Status.FULFILLED)
        assert [o.body["recipients"] for o in state.created_orders[1:]] == [
            [{"email": "omar@example.com", "amount": 25}]
        ]
        assert len(deliveries(stack, JANE)) == 1


async def test_a_shared_order_of_unknown_outcome_is_reviewed_and_ordered_again_together(
    emulator: SlackEmulator, database: str
) -> None:
    state = GiftronautState()
    async with giftronaut_stack(emulator, database, state) as stack:
        await stack.request_reward(BULK)
        await emulator.wait_for(lambda: stack.ws.dm_messages(ARJUN), 5, "Arjun's card")
        state.fail_next_with(409, "REQUEST_CONFLICT")  # "one may exist": nobody can tell
        await stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION)
        for request_id in (1, 2, 3):
            await stack.wait_status(request_id, Status.NEEDS_REVIEW)
        await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
        card = stack.approval_card(ARJUN)
        assert "applies to all of them" in str(card.blocks)
        first_key = state.seen("POST", "/api/v1/orders/branded-cards")[0].body["idempotencyKey"]

        # Giftronaut's list shows no such order: one Order again orders all three again, in
        # one new order under a new key (never a smaller body under the old one).
        await stack.click(ARJUN, card, ORDER_AGAIN_ACTION, value="2")
        for request_id in (1, 2, 3):
            await stack.wait_status(request_id, Status.FULFILLED)
        [order] = state.created_orders
        assert len(order.body["recipients"]) == 3
        assert order.idempotency_key != first_key
        assert len({(await stack.runtime.store.get(i)).order_key for i in (1, 2, 3)}) == 1


async def test_a_scheduled_bulk_reward_is_one_scheduled_order_cancelled_once(
    emulator: SlackEmulator, database: str
) -> None:
    state = GiftronautState()
    async with giftronaut_stack(emulator, database, state) as stack:
        await stack.request_reward({**BULK, "deliver_at": _in_hours(3)})
        await emulator.wait_for(lambda: stack.ws.dm_messages(ARJUN), 5, "Arjun's card")
        await stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION)
        await emulator.wait_for(lambda: state.created_orders, 5, "the scheduled order")
        for request_id in (1, 2, 3):
            await stack.wait_status(request_id, Status.ORDERING)
        [order] = state.created_orders
        assert order.body["sendTiming"]["type"] == "SCHEDULED"
        assert len(order.body["recipients"]) == 3
        await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)

        summary = await emulator.wait_for_message(TEAM, "Rewards #1-#3")
        await stack.click(MAYA, summary, CANCEL_ACTION)
        for request_id in (1, 2, 3):
            await stack.wait_status(request_id, Status.CANCELLED)
        assert order.status == "CANCELED"
        assert len(state.seen("DELETE", "/cancel")) == 1
