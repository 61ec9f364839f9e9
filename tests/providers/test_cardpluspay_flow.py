"""The whole /reward flow with only CardPlusPay enabled, against the fake CardPlusPay API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from bot.domain import Status
from bot.offline.emulator import SlackEmulator
from bot.slack.ids import APPROVE_ACTION
from tests.fakes.cardpluspay import API_KEY, CardPlusPayState, standard_state
from tests.slack_stack import ARJUN, JANE, MAYA, TEAM, Stack
from tests.support import bot_with, cardpluspay_adapter

REQUEST = {
    "recipient": JANE,
    "card": "cardpluspay:GOOGLE-5USD-KOXx",
    "amount": "5",
    "message": "For shipping the release",
}


@asynccontextmanager
async def cardpluspay_bot(
    emulator: SlackEmulator, database: str, fake: CardPlusPayState
) -> AsyncIterator[Stack]:
    async with (
        cardpluspay_adapter(fake) as adapter,
        bot_with(emulator, database, {"cardpluspay": adapter}) as stack,
    ):
        yield stack


async def test_a_cardpluspay_reward_is_bought_once_and_delivered_privately(
    emulator: SlackEmulator, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    fake = standard_state()
    fake.polls_until_complete = 2  # issued asynchronously: the bot polls GET /orders/{id}
    async with cardpluspay_bot(emulator, database, fake) as stack:
        ws = stack.ws
        await stack.request_reward(REQUEST)
        summary = await emulator.wait_for_message(TEAM, "Reward #1")
        await emulator.wait_for(lambda: ws.dm_messages(ARJUN), 5, "Arjun's card")
        await stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION)

        delivery = await emulator.wait_for_dm(JANE, "sent you a reward")
        await emulator.wait_for(
            lambda: "Delivered" in str(ws.find_message(TEAM, summary.ts).blocks),  # type: ignore[union-attr]
            5,
            "the summary to show delivered",
        )
        await emulator.wait_for_dm(MAYA, "was delivered")

        # Exactly one card was bought, for Jane's email, and the bot read its status.
        assert len(fake.orders) == 1
        assert fake.purchases_attempted == 1
        bought = fake.orders[0]
        assert (bought.item_code, bought.email) == ("GOOGLE-5USD-KOXx", "jane@example.com")
        assert fake.seen("GET", "/orders/{id}")

        # The code and PIN are in Jane's DM and nowhere else (nor in the logs). slack_sdk's own
        # DEBUG log of the DM request is left out: it holds the DM body (a bot-wide concern).
        assert bought.pin is not None
        assert bought.code in str(delivery.blocks)
        assert bought.pin in str(delivery.blocks)
        outside = stack.everything_visible_outside(JANE)
        logged = "\n".join(
            r.getMessage() for r in caplog.records if not r.name.startswith("slack_sdk")
        )
        for secret in (bought.code, bought.pin, API_KEY):
            assert secret not in outside
            assert secret not in logged
        replies = [m.text for m in ws.thread_replies(TEAM, summary.ts)]
        assert any("Delivered" in r for r in replies), replies

        request = await stack.runtime.store.get(1)
        assert request.status is Status.FULFILLED
        assert request.provider_order_id == str(bought.order_id)
        assert str(request.charged) == "4.90 USD"  # what CardPlusPay charged, not the face


async def test_an_unconfirmed_cardpluspay_purchase_is_parked_for_a_person(
    emulator: SlackEmulator, database: str
) -> None:
    fake = standard_state()
    fake.drop_next_before_processing()  # the purchase gets no answer and never shows up
    async with cardpluspay_bot(emulator, database, fake) as stack:
        await stack.request_reward(REQUEST)
        summary = await emulator.wait_for_message(TEAM, "Reward #1")
        await emulator.wait_for(lambda: stack.ws.dm_messages(ARJUN), 5, "Arjun's card")
        await stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION)
        await emulator.wait_for(
            lambda: any(
                "CardPlusPay dashboard" in m.text for m in stack.ws.thread_replies(TEAM, summary.ts)
            ),
            10,
            "the thread to ask for a person",
        )
        request = await stack.runtime.store.get(1)
        assert request.status is Status.NEEDS_REVIEW
        assert fake.purchases_attempted == 1  # never sent again
        assert fake.orders == []
        assert not stack.ws.dm_messages(JANE)
