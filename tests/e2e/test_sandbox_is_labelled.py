"""The sandbox runs only when named, and then says plainly, on every card, DM and the App Home,
that no real card is issued."""

from __future__ import annotations

import json

from bot.slack.cards import approval_card
from bot.slack.ids import APPROVE_ACTION
from tests.slack_stack import ARJUN, GOOD_VALUES, JANE, TEAM, Stack

NOTICE = "no real gift card is issued"


async def test_every_surface_of_a_sandbox_reward_says_no_real_card_is_issued(
    stack: Stack,
) -> None:
    await stack.request_reward(GOOD_VALUES)
    await stack.emulator.wait_for(lambda: stack.ws.dm_messages(ARJUN), 5, "the card")
    card = stack.approval_card(ARJUN)
    assert NOTICE in json.dumps(card.blocks)
    await stack.click(ARJUN, card, APPROVE_ACTION)
    delivery = await stack.emulator.wait_for_dm(JANE, "sent you a reward")
    assert NOTICE in json.dumps(delivery.blocks)
    summary = await stack.emulator.wait_for_message(TEAM, "Reward #1")
    assert NOTICE in json.dumps(summary.blocks)
    await stack.emulator.driver.open_app_home(JANE)
    home = await stack.emulator.wait_for(lambda: stack.ws.home_view(JANE), 5, "the home tab")
    assert NOTICE in json.dumps(home["blocks"])


async def test_a_real_providers_reward_carries_no_sandbox_notice(stack: Stack) -> None:
    """The notice rides on the provider of the request, not on every message."""
    await stack.request_reward(GOOD_VALUES)
    stored = await stack.runtime.store.get(1)
    _, blocks = approval_card(stored.model_copy(update={"provider": "giftronaut"}))
    assert NOTICE not in json.dumps(blocks)
