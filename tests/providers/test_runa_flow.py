"""The whole /reward flow with only Runa enabled, against the fake Runa API.

The adapter polls only every 30 seconds, so a prompt delivery proves the signed
``order.completion`` webhook posted to ``/webhooks/runa`` woke the bot.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import httpx
import pytest
from pydantic import SecretStr

from bot.domain import Status
from bot.offline.emulator import SlackEmulator
from bot.offline.emulator.delivery import HttpDelivery
from bot.server import SLACK_PATH
from bot.slack.ids import APPROVE_ACTION, RESEND_ACTION
from providers.http import RetryPolicy
from providers.runa import RunaProvider
from tests.fakes import serve
from tests.fakes.runa import API_KEY, RunaState, sign_webhook
from tests.fakes.runa import app as runa_app
from tests.slack_stack import (
    ARJUN,
    GOOD_VALUES,
    JANE,
    LIN,
    MAYA,
    OMAR,
    TEAM,
    redeem_urls,
)
from tests.support import bot_with

POLL_INTERVAL = 30.0


def runa_provider(
    http: httpx.AsyncClient, url: str, webhook_secret: str | None, poll_interval: float
) -> RunaProvider:
    """The adapter pointed at the fake Runa at ``url``, retrying quickly."""
    return RunaProvider(
        http,
        api_key=SecretStr(API_KEY),
        base_url=url + "/v2",
        webhook_secret=SecretStr(webhook_secret) if webhook_secret else None,
        retry=RetryPolicy(attempts=3, base_delay=0.01),
        poll_interval=poll_interval,
    )


async def test_a_runa_reward_is_ordered_and_delivered_privately_on_its_webhook(
    emulator: SlackEmulator,
    database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    fake = RunaState()
    app = runa_app(fake)
    fake.completion_delay = None  # the order completes only when the test says so
    async with serve(app) as runa_url, httpx.AsyncClient(timeout=5.0) as http:
        runa = runa_provider(http, runa_url, fake.webhook_secret, POLL_INTERVAL)
        async with bot_with(emulator, database, {"runa": runa}) as stack:
            ws = stack.ws

            # 1. The modal offers Runa's cards; Maya asks for 25 GBP of Fake Coffee for Jane.
            await stack.request_reward(
                {
                    "recipient": JANE,
                    "card": "runa:COFFEE-GB",
                    "amount": "25",
                    "message": "For shipping the release",
                }
            )
            summary = await emulator.wait_for_message(TEAM, "Reward #1")

            # 2. Arjun approves; the bot places one async order and starts waiting.
            await emulator.wait_for(lambda: ws.dm_messages(ARJUN), 5, "Arjun's card")
            await stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION)
            await emulator.wait_for(lambda: fake.orders, 5, "the order at Runa")
            order = fake.only_order()
            for _ in range(100):
                if (await stack.runtime.store.get(1)).provider_order_id == order.id:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)  # let the fulfillment task start waiting for news
            assert not ws.dm_messages(JANE)

            # 3. Runa completes the order and posts order.completion to the bot.
            fake.complete(order.id)
            body = fake.completion_webhook(order.id)
            delivery = emulator.driver.delivery
            assert isinstance(delivery, HttpDelivery)
            webhook_url = delivery.request_url.replace(SLACK_PATH, "/webhooks/runa")
            async with httpx.AsyncClient(timeout=5.0) as runa_side:
                forged = sign_webhook(fake.webhook_secret, body) | {
                    "webhook-signature": "v1,Zm9yZ2VkIHNpZ25hdHVyZSBmb3IgdGhlIHRlc3Q="
                }
                rejected = await runa_side.post(webhook_url, content=body, headers=forged)
                assert rejected.status_code == 400
                await asyncio.sleep(0.3)
                assert not ws.dm_messages(JANE), "a forged webhook must not wake anything"

                started = time.monotonic()
                accepted = await runa_side.post(
                    webhook_url, content=body, headers=sign_webhook(fake.webhook_secret, body)
                )
                assert accepted.status_code == 200

            # 4. Jane gets the payout link privately, long before the next poll.
            dm = await emulator.wait_for_dm(JANE, "sent you a reward", timeout=5)
            assert time.monotonic() - started < POLL_INTERVAL / 3
            assert order.link in str(dm.blocks) + dm.text
            await emulator.wait_for(
                lambda: "Delivered" in str(ws.find_message(TEAM, summary.ts).blocks),  # type: ignore[union-attr]
                5,
                "the summary to show delivered",
            )
            await emulator.wait_for_dm(MAYA, "was delivered")
            replies = [m.text for m in ws.thread_replies(TEAM, summary.ts)]
            assert any("Delivered" in r for r in replies), replies

            # 5. One order at Runa; the link is nowhere but Jane's DM, the logs or the DB row.
            assert len(fake.orders) == 1
            assert len(fake.order_posts) == 1
            assert order.link not in stack.everything_visible_outside(JANE)
            request = await stack.runtime.store.get(1)
            assert request.status is Status.FULFILLED
            assert request.provider_order_id == order.id
            assert request.charged is not None and str(request.charged) == "23.75 GBP"
            assert order.link not in request.model_dump_json()
    # slack_sdk's own DEBUG logging prints every Web API body, the DM included: that is the
    # client library's, not the bot's or the adapter's, so it is left out of this check.
    ours = [r for r in caplog.records if not r.name.startswith("slack_sdk")]
    assert ours, "the check must see the bot's and the adapter's log records"
    assert not [r.name for r in ours if order.link in r.getMessage()]
    assert API_KEY not in caplog.text


async def test_a_bulk_runa_reward_is_one_order_each_recipient_their_own_link(
    emulator: SlackEmulator, database: str
) -> None:
    fake = RunaState()
    app = runa_app(fake)
    async with serve(app) as runa_url, httpx.AsyncClient(timeout=5.0) as http:
        runa = runa_provider(http, runa_url, None, poll_interval=0.05)
        async with bot_with(emulator, database, {"runa": runa}) as stack:
            await stack.request_reward(
                {
                    "recipient": JANE,
                    "more_recipients": [OMAR, LIN],
                    "card": "runa:COFFEE-GB",
                    "amount": "25; 40; 25",
                    "message": "For shipping the release",
                }
            )
            await emulator.wait_for(lambda: stack.ws.dm_messages(ARJUN), 5, "Arjun's card")
            await stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION)
            for request_id in (1, 2, 3):
                await stack.wait_status(request_id, Status.FULFILLED)

            # One order of three payout links; each person got one link, their own.
            [order] = fake.orders.values()
            assert len(fake.order_posts) == 1
            assert [item.face_value for item in order.items] == [25, 40, 25]
            links = {who: redeem_urls(stack.ws.dm_messages(who)) for who in (JANE, OMAR, LIN)}
            assert [len(found) for found in links.values()] == [1, 1, 1]
            by_item = {item.link: item for item in order.items}
            # Omar's is the 40 GBP link; Jane and Lin each have one of the two 25 GBP links.
            assert by_item[links[OMAR][0]].face_value == 40
            assert (links[JANE][0], links[LIN][0]) == (order.items[0].link, order.items[2].link)
            for who, (link,) in links.items():
                assert link not in stack.everything_visible_outside(who)
            charged = [(await stack.runtime.store.get(i)).charged for i in (1, 2, 3)]
            assert sum(c.amount for c in charged if c) == order.price

            # Asking again, each gets the same link as before, never someone else's.
            for who in (LIN, JANE):
                delivery = await emulator.wait_for_dm(who, "sent you a reward")
                await stack.click(who, delivery, RESEND_ACTION)
                await emulator.wait_for(
                    lambda who=who: len(redeem_urls(stack.ws.dm_messages(who))) == 2,
                    5,
                    f"{who}'s card again",
                )
                assert len(set(redeem_urls(stack.ws.dm_messages(who)))) == 1


async def test_a_pending_runa_order_is_looked_at_soon_then_less_and_less_often(
    emulator: SlackEmulator, database: str
) -> None:
    """Without webhooks the bot polls: first soon after the order (most complete within
    seconds), then each wait longer than the last, up to the adapter's longest interval."""
    fake = RunaState(completion_delay=4.0)
    async with serve(runa_app(fake)) as runa_url, httpx.AsyncClient(timeout=5.0) as http:
        runa = runa_provider(http, runa_url, None, poll_interval=POLL_INTERVAL)
        async with bot_with(emulator, database, {"runa": runa}) as stack:
            await stack.request_and_approve({**GOOD_VALUES, "card": "runa:COFFEE-GB"})
            await stack.wait_status(1, Status.FULFILLED, 15)
    [placed] = fake.order_posts
    looks = [r.at for r in fake.requests if r.method == "GET" and r.path.startswith("/v2/order/")]
    gaps = [later - earlier for earlier, later in itertools.pairwise([placed.at, *looks])]
    # The first look comes well before the old fixed interval's (5 s); the last one saw the
    # order complete 4 s after it was placed.
    assert gaps[0] < 2.0, gaps
    assert 4 <= len(looks) <= 10, gaps
    # Each wait at least as long as the one before (a busy machine only lengthens them).
    assert all(later >= earlier - 0.05 for earlier, later in itertools.pairwise(gaps[1:])), gaps
    assert gaps[-1] > 2 * gaps[1], gaps
