"""A delivered card goes only where its recipient says: an approver's redirect to another
address waits for the recipient's confirmation in Slack, and the recipient's own resend never
goes anywhere they did not confirm."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.domain import Status
from bot.emulator import SlackEmulator
from bot.emulator.workspace import Message
from bot.errors import NotAllowed
from bot.local import running_bot
from bot.slack_views import (
    APPROVE_ACTION,
    CONFIRM_EMAIL_ACTION,
    DECLINE_EMAIL_ACTION,
    RESEND_ACTION,
)
from providers.sandbox import SandboxProvider
from tests.e2e.conftest import APPROVERS, ARJUN, GOOD_VALUES, JANE, LIN, OMAR, TEAM, Stack
from tests.e2e.support import giftronaut_adapter
from tests.fakes.giftronaut import GiftronautState

CARD = {**GOOD_VALUES, "card": "giftronaut:branded:10042", "amount": "50"}
ELSEWHERE = "me@elsewhere.example"


def _asks(stack: Stack) -> list[Message]:
    return [m for m in stack.ws.dm_messages(JANE) if "asks to email your" in m.text]


async def _lin_asks_for(stack: Stack, address: str, asks_before: int) -> Message:
    await stack.emulator.driver.slash_command(LIN, TEAM, text=f"resend 1 {address}")
    await stack.emulator.wait_for(lambda: len(_asks(stack)) > asks_before, 5, "Jane's DM")
    return _asks(stack)[-1]


async def test_an_approver_cannot_take_a_card_without_its_recipient_confirming(
    emulator: SlackEmulator, database: Path, step_clock: Path
) -> None:
    state = GiftronautState()
    async with (
        giftronaut_adapter(state) as giftronaut,
        running_bot(
            emulator, database=database, approvers=APPROVERS, providers={"giftronaut": giftronaut}
        ) as runtime,
    ):
        stack = Stack(emulator, runtime, SandboxProvider())
        await stack.request_reward(CARD)
        await emulator.wait_for(lambda: stack.ws.dm_messages(ARJUN), 5, "the card")
        await stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION)
        delivery = await emulator.wait_for_dm(JANE, "sent you a reward")
        await stack.wait_status(1, Status.FULFILLED)
        [order] = state.created_orders

        # Lin, who did not approve it, asks for the card at her own address: nothing is sent.
        ask = await _lin_asks_for(stack, ELSEWHERE, 0)
        assert ELSEWHERE in str(ask.blocks)  # Jane sees the address in full, to judge it
        await emulator.wait_for(lambda: stack.ws.ephemerals(LIN), 5, "Lin's answer")
        assert "Nothing is sent there unless they confirm" in stack.ws.ephemerals(LIN)[-1].text
        assert order.resends == []
        assert (await runtime.store.get(1)).recipient_email == "jane@example.com"

        # Jane's own resend still goes to her own address only.
        await stack.click(JANE, delivery, RESEND_ACTION)
        await emulator.wait_for(lambda: order.resends, 5, "Jane's resend")
        assert order.resends == [{"email": "jane@example.com"}]

        # Nobody but Jane can confirm, whatever the button says.
        with pytest.raises(NotAllowed, match="Only the person who received"):
            await runtime.redelivery.confirm_email(1, OMAR)

        # Jane says it is not hers: still nothing is sent, and Lin hears of it.
        await stack.click(JANE, ask, DECLINE_EMAIL_ACTION)
        await emulator.wait_for_dm(LIN, "is not their address")
        assert order.resends == [{"email": "jane@example.com"}]

        # Asked again, but Jane confirms only after a day: it has expired, nothing is sent.
        late = await _lin_asks_for(stack, ELSEWHERE, 1)
        _step(step_clock, 25 * 3600)
        await stack.click(JANE, late, CONFIRM_EMAIL_ACTION)
        await emulator.wait_for(
            lambda: "expired" in stack.ws.ephemerals(JANE)[-1].text, 5, "the expiry"
        )
        _step(step_clock, 0)
        assert len(order.resends) == 1

        # Only Jane's confirmation moves the card, and then her own resends follow it.
        confirmed = await _lin_asks_for(stack, ELSEWHERE, 2)
        await stack.click(JANE, confirmed, CONFIRM_EMAIL_ACTION)
        await emulator.wait_for(lambda: len(order.resends) == 2, 5, "the redirect")
        assert order.resends[1] == {"email": "jane@example.com", "updatedEmail": ELSEWHERE}
        assert (await runtime.store.get(1)).recipient_email == ELSEWHERE

        trail = [
            (e.kind, e.actor)
            for e in await runtime.store.events(1)
            if e.kind.startswith("email_change") or e.kind == "resent"
        ]
        assert trail == [
            ("email_change_requested", LIN),
            ("resent", JANE),
            ("email_change_declined", JANE),
            ("email_change_requested", LIN),
            ("email_change_expired", JANE),
            ("email_change_requested", LIN),
            ("email_change_confirmed", JANE),
            ("resent", JANE),
        ]
        assert ELSEWHERE not in str([e.detail for e in await runtime.store.events(1)])


def _step(offset_file: Path, seconds: float) -> None:
    offset_file.write_text(str(seconds))
