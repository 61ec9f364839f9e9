"""A delivered card goes only where its recipient says: an approver's correction of the address
a card is emailed to is only a proposal until the recipient confirms it in Slack (or it is their
own Slack email), and the recipient's own resend never goes anywhere they did not confirm."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.domain import Status
from bot.offline.emulator import SlackEmulator
from bot.offline.emulator.workspace import Message
from bot.slack.ids import APPROVE_ACTION, CONFIRM_EMAIL_ACTION, DECLINE_EMAIL_ACTION, RESEND_ACTION
from bot.store import SYSTEM_ACTOR
from tests.fakes.giftronaut import FakeOrder, GiftronautState
from tests.slack_stack import ARJUN, GOOD_VALUES, JANE, LIN, MAYA, OMAR, TEAM, Stack
from tests.support import (
    address_checks,
    confirm_new_address,
    giftronaut_stack,
)

JANES_CARD = {**GOOD_VALUES, "card": "giftronaut:branded:10042", "amount": "50"}
ELSEWHERE = "me@elsewhere.example"


@dataclass
class Delivered:
    """Jane's Giftronaut card, approved by Arjun and delivered: reward #1."""

    stack: Stack
    # Giftronaut's one order, holding the card.
    order: FakeOrder
    # Jane's DM that delivered it.
    delivery: Message


@asynccontextmanager
async def janes_card_delivered(emulator: SlackEmulator, database: str) -> AsyncIterator[Delivered]:
    """The bot with only Giftronaut enabled, once it has delivered Jane's card (reward #1)."""
    state = GiftronautState()
    async with giftronaut_stack(emulator, database, state) as stack:
        await stack.request_and_approve(JANES_CARD, approver=ARJUN)
        delivery = await emulator.wait_for_dm(JANE, "sent you a reward")
        await stack.wait_status(1, Status.FULFILLED)
        [order] = state.created_orders
        yield Delivered(stack, order, delivery)


async def test_an_approver_cannot_send_a_card_to_their_own_mailbox(
    emulator: SlackEmulator, database: str
) -> None:
    async with janes_card_delivered(emulator, database) as delivered:
        stack, order, delivery = delivered.stack, delivered.order, delivered.delivery

        # Lin, an approver who did not approve #1, asks for the card at her own address.
        await emulator.driver.slash_command(LIN, TEAM, text=f"resend 1 {ELSEWHERE}")
        await emulator.wait_for(lambda: stack.ws.ephemerals(LIN), 5, "Lin's answer")
        await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
        # Giftronaut emailed nothing anywhere, and the card still goes to Jane's address.
        assert order.resends == []
        assert (await stack.runtime.store.get(1)).recipient_email == "jane@example.com"

        # Jane's own "Email it to me again" goes to her address, not Lin's.
        await stack.click(JANE, delivery, RESEND_ACTION)
        await emulator.wait_for(lambda: order.resends, 5, "Jane's resend")
        await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 5)
        assert order.resends == [{"email": "jane@example.com"}]

        # Lin was told it waits for Jane; Jane alone sees the address in full, to judge it;
        # the requester hears of it, masked, as does the audit trail.
        assert "<@U0JANE> is asked to confirm m***@elsewhere.example" in (
            stack.ws.ephemerals(LIN)[-1].text
        )
        [check] = address_checks(stack)
        assert ELSEWHERE in str(check.blocks)
        assert "Confirm, it is mine" in str(check.blocks)
        await emulator.wait_for_dm(MAYA, "emailed to m***@elsewhere.example instead")
        assert ELSEWHERE not in stack.everything_visible_outside(JANE)
        trail = await stack.runtime.store.events(1)
        assert [(e.kind, e.actor, e.detail["to"]) for e in trail if "email_change" in e.kind] == [
            ("email_change_requested", LIN, "email m***@elsewhere.example")
        ]
        assert ELSEWHERE not in str([e.detail for e in trail])


JANE_AND_OMAR = {**JANES_CARD, "more_recipients": [OMAR], "amount": "50; 25"}


async def test_only_its_recipients_confirmation_moves_a_card(
    emulator: SlackEmulator, database: str
) -> None:
    state = GiftronautState()
    async with giftronaut_stack(emulator, database, state) as stack:
        runtime = stack.runtime
        # One Giftronaut order: #1 is Jane's card, #2 Omar's.
        await stack.request_reward(JANE_AND_OMAR)
        await emulator.wait_for(lambda: stack.ws.dm_messages(ARJUN), 5, "Arjun's card")
        await stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION)
        delivery = await emulator.wait_for_dm(JANE, "sent you a reward")
        for request_id in (1, 2):
            await stack.wait_status(request_id, Status.FULFILLED)
        [order] = state.created_orders

        await emulator.driver.slash_command(LIN, TEAM, text=f"resend 1 {ELSEWHERE}")
        await emulator.driver.slash_command(LIN, TEAM, text="resend 2 omar@home.example")
        await emulator.wait_for(lambda: address_checks(stack, OMAR), 5, "Omar's address check")
        await emulator.wait_for(lambda: address_checks(stack), 5, "Jane's address check")

        # Omar's button, forged to name Jane's change: refused, nothing sent.
        await stack.click(OMAR, address_checks(stack, OMAR)[0], CONFIRM_EMAIL_ACTION, value="1")
        await emulator.wait_for(lambda: stack.refusals(OMAR), 5, "Omar's refusal")
        assert "Only the person who received this reward" in stack.refusals(OMAR)[-1]
        await asyncio.wait_for(runtime.jobs.wait_idle(), 5)
        assert order.resends == []

        # Jane confirms: Giftronaut emails her card (her entry of the order only) there, and
        # it goes there from now on.
        await confirm_new_address(stack)
        await emulator.wait_for(lambda: order.resends, 5, "the redirect")
        assert order.resends == [{"email": "jane@example.com", "updatedEmail": ELSEWHERE}]
        await emulator.wait_for_dm(LIN, "emailing reward #1 again to m***@elsewhere.example")
        for person in (JANE, MAYA):
            await emulator.wait_for_dm(person, "<@U0LIN> asked, and <@U0JANE> confirmed it")
        assert (await runtime.store.get(1)).recipient_email == ELSEWHERE
        assert (await runtime.store.get(2)).recipient_email == "omar@example.com"

        # A second click on Confirm does nothing more.
        await confirm_new_address(stack)
        await emulator.wait_for(
            lambda: "already confirmed" in stack.ws.ephemerals(JANE)[-1].text, 5, "the answer"
        )
        # Jane's own resend follows the address she confirmed.
        await stack.click(JANE, delivery, RESEND_ACTION)
        await emulator.wait_for(lambda: len(order.resends) == 2, 5, "Jane's resend")
        assert order.resends[1] == {"email": ELSEWHERE}

        # Omar says his was not his: nothing is sent, and Lin and Maya hear of it.
        await stack.click(OMAR, address_checks(stack, OMAR)[0], DECLINE_EMAIL_ACTION)
        for person in (LIN, MAYA):
            await emulator.wait_for_dm(person, "said o***@home.example is not their address")
        await asyncio.wait_for(runtime.jobs.wait_idle(), 5)
        assert len(order.resends) == 2
        assert (await runtime.store.get(2)).recipient_email == "omar@example.com"

        trail = [
            (e.kind, e.actor)
            for e in await runtime.store.events(1)
            if e.kind.startswith(("email_change", "resen"))
        ]
        assert trail == [
            ("email_change_requested", LIN),
            ("email_change_confirmed", JANE),
            ("resent", LIN),
            ("resend_requested", JANE),
            ("resent", JANE),
        ]
        kinds = [e.kind for e in await runtime.store.events(2) if "email_change" in e.kind]
        assert kinds == ["email_change_requested", "email_change_declined"]


async def test_a_refused_late_or_unseen_address_is_never_used(
    emulator: SlackEmulator, database: str, step_clock: Callable[[float], None]
) -> None:
    async with janes_card_delivered(emulator, database) as delivered:
        stack, order, runtime = delivered.stack, delivered.order, delivered.stack.runtime

        async def propose(approver: str, checks_before: int) -> None:
            await emulator.driver.slash_command(approver, TEAM, text=f"resend 1 {ELSEWHERE}")
            await emulator.wait_for(
                lambda: len(address_checks(stack)) > checks_before, 5, "Jane's address check"
            )
            await asyncio.wait_for(runtime.jobs.wait_idle(), 5)

        # Refused: Lin and the requester hear of it.
        await propose(LIN, 0)
        await stack.click(JANE, address_checks(stack)[0], DECLINE_EMAIL_ACTION)
        for person in (LIN, MAYA):
            await emulator.wait_for_dm(person, "is not their address")
        assert "Nothing was sent to me@elsewhere.example" in stack.ws.ephemerals(JANE)[-1].text

        # Confirmed a day later: too late, and Lin hears of it.
        await propose(LIN, 1)
        step_clock(25 * 3600)
        await stack.click(JANE, address_checks(stack)[1], CONFIRM_EMAIL_ACTION)
        await emulator.wait_for_dm(LIN, "did not confirm m***@elsewhere.example within 24 hours")
        assert "This request has expired" in stack.ws.ephemerals(JANE)[-1].text

        # Never answered: ended as expired when the next one is proposed.
        await propose(LIN, 2)
        step_clock(50 * 3600)
        # Slack refuses the next DM asking Jane: it is withdrawn, so it can be asked again.
        emulator.fail_next("chat.postMessage", "restricted_action")
        await emulator.driver.slash_command(ARJUN, TEAM, text=f"resend 1 {ELSEWHERE}")
        await emulator.wait_for_dm(ARJUN, "Slack did not take the message asking <@U0JANE>")
        await propose(ARJUN, 3)

        assert order.resends == []
        assert (await runtime.store.get(1)).recipient_email == "jane@example.com"
        trail = [(e.kind, e.actor) for e in await runtime.store.events(1) if "email" in e.kind]
        assert trail == [
            ("email_change_requested", LIN),
            ("email_change_declined", JANE),
            ("email_change_requested", LIN),
            ("email_change_expired", SYSTEM_ACTOR),
            ("email_change_requested", LIN),
            ("email_change_expired", SYSTEM_ACTOR),
            ("email_change_requested", ARJUN),
            ("email_change_withdrawn", SYSTEM_ACTOR),
            ("email_change_requested", ARJUN),
        ]


async def test_the_recipients_own_slack_email_needs_no_confirmation(
    emulator: SlackEmulator, database: str
) -> None:
    async with janes_card_delivered(emulator, database) as delivered:
        stack, order, runtime = delivered.stack, delivered.order, delivered.stack.runtime

        # Jane's Slack email changed after the order: it is hers, so it is used at once.
        emulator.workspace.users[JANE].email = "jane@newco.example"
        await emulator.driver.slash_command(ARJUN, TEAM, text="resend 1 jane@newco.example")
        await emulator.wait_for(lambda: order.resends, 5, "the resend")
        assert order.resends == [
            {"email": "jane@example.com", "updatedEmail": "jane@newco.example"}
        ]
        for person in (JANE, MAYA):
            await emulator.wait_for_dm(person, "it is <@U0JANE>'s Slack email")
        assert address_checks(stack) == []
        [confirmed] = [
            e for e in await runtime.store.events(1) if e.kind == "email_change_confirmed"
        ]
        assert (confirmed.actor, confirmed.detail["as"]) == (
            SYSTEM_ACTOR,
            "the recipient's Slack email",
        )

        # Where it goes already: simply emailed again, nothing to change or confirm.
        await emulator.driver.slash_command(ARJUN, TEAM, text="resend 1 Jane@NewCo.example")
        await emulator.wait_for(lambda: len(order.resends) == 2, 5, "the second resend")
        assert order.resends[1] == {"email": "jane@newco.example"}
        await asyncio.wait_for(runtime.jobs.wait_idle(), 5)
        kinds = [e.kind for e in await runtime.store.events(1) if "email_change" in e.kind]
        assert kinds == ["email_change_requested", "email_change_confirmed"]
