"""The whole /reward flow with only UGiftMe enabled, the adapter talking to the fake UGiftMe."""

from __future__ import annotations

import httpx
import pytest

from bot.domain import Status
from bot.offline.emulator import SlackEmulator
from bot.slack.ids import APPROVE_ACTION
from providers.http import RetryPolicy
from providers.ugiftme import UGiftMeProvider
from tests.fakes import serve
from tests.fakes.ugiftme import UGiftMeState
from tests.fakes.ugiftme import app as ugiftme_app
from tests.slack_stack import ARJUN, GOOD_VALUES, JANE, MAYA, TEAM
from tests.support import bot_with

CARD = "ugiftme:AMAZON_UK_STD|Amazon UK"


async def test_reward_is_ordered_from_ugiftme_and_delivered_privately(
    emulator: SlackEmulator,
    database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    fake = UGiftMeState(async_mode=True)  # 202 → polling → succeeded
    fake.drop_next_after_processing()  # and the first answer is lost: still one order
    async with serve(ugiftme_app(fake)) as url, httpx.AsyncClient(timeout=5) as http:
        adapter = UGiftMeProvider(
            http,
            fake.api_key,
            url,
            retry=RetryPolicy(attempts=3, base_delay=0.01),
            poll_interval=0.02,
        )
        async with bot_with(emulator, database, {"ugiftme": adapter}) as stack:
            ws = stack.ws

            await emulator.driver.slash_command(MAYA, TEAM)
            view = await emulator.wait_for(lambda: ws.current_view(MAYA), 5, "the modal")
            card_select = next(b for b in view["blocks"] if b["block_id"] == "card")["element"]
            offered = {o["value"] for o in card_select["options"]}
            assert CARD in offered
            assert not any(value.startswith("sandbox:") for value in offered)
            await emulator.driver.submit_view(MAYA, {**GOOD_VALUES, "card": CARD})
            summary = await emulator.wait_for_message(TEAM, "Reward #1")

            await emulator.wait_for(lambda: ws.dm_messages(ARJUN), 5, "Arjun's approval card")
            await stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION)

            delivery = await emulator.wait_for_dm(JANE, "sent you a reward")
            await emulator.wait_for(
                lambda: "Delivered" in str(ws.find_message(TEAM, summary.ts).blocks),  # type: ignore[union-attr]
                5,
                "the summary to show delivered",
            )
            await emulator.wait_for(
                lambda: any("Delivered" in m.text for m in ws.thread_replies(TEAM, summary.ts)),
                5,
                "the thread to say delivered",
            )
            await emulator.wait_for_dm(MAYA, "was delivered")

            # Exactly one order at UGiftMe, for what was requested.
            assert fake.order_count == 1
            assert len(fake.order_requests) == 1
            (order,) = fake.orders.values()
            assert (order["productCode"], order["valuePurchased"]) == ("AMAZON_UK_STD", 25)
            assert order["giftOrder"]["recipientEmail"] == "jane@example.com"
            create_calls = fake.create_calls
            assert len(create_calls) == 2  # the lost answer was replayed with the same key
            assert len({c.headers["Idempotency-Key"] for c in create_calls}) == 1

            # The voucher code and link reach Jane's DM and nothing else.
            code = order["merchant"]["voucherCode"]
            link = order["merchant"]["redemptionUrl"]
            dm = str(delivery.blocks) + delivery.text
            assert code in dm and link in dm
            outside = stack.everything_visible_outside(JANE)
            assert code not in outside and link not in outside
            # slack_sdk's own DEBUG log prints every outgoing message body, the DM included
            # (reported: the bot should keep that logger above DEBUG); everything else is clean.
            ours = "\n".join(
                r.getMessage() for r in caplog.records if not r.name.startswith("slack_sdk")
            )
            for secret in (code, link, fake.api_key):
                assert secret not in ours

            request = await stack.runtime.store.get(1)
            assert request.status is Status.FULFILLED
            assert request.provider_order_id == f"request:{next(iter(fake.order_requests))}"
