"""Limits that protect a provider or Slack hold for the whole fleet, not per process: two bots
on one database (two runtimes in this process, each with its own adapter, HTTP client and
database connections, as two ``rewardbot serve`` processes would have) keep a provider's rate
limit and a Slack channel's pace together."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
import pytest
from pydantic import SecretStr

from bot.domain import Status
from bot.offline.emulator import SlackEmulator
from bot.pacing import SLACK_CHANNEL_BURST, SLACK_CHANNEL_INTERVAL
from providers.base import Provider
from providers.http import RetryPolicy
from providers.runa import RunaProvider
from providers.sandbox import SandboxProvider
from tests.fakes import serve
from tests.fakes.runa import API_KEY, RunaState
from tests.fakes.runa import app as runa_app
from tests.slack_stack import ARJUN, JANE, MAYA, TEAM, Stack
from tests.support import approve_all, bot_with, runa_requests

pytestmark = pytest.mark.exclusive("two bots keeping a pace together, measured in time")

# A limit on every call (as Giftronaut's 300 requests a minute), on the fake Runa, scaled
# down so the test need not wait minutes: what the fake takes (counted over a few seconds, as a
# provider counts over a minute) and what the adapters are told.
REQUESTS_PER_SECOND = 10
FAKE_RATE_LIMIT = (3 * REQUESTS_PER_SECOND, 3.0)
REWARDS = 10
# Which bot a request to the fake came from.
PROCESS_HEADER = "X-Test-Process"


def runa(http: httpx.AsyncClient, url: str) -> RunaProvider:
    adapter = RunaProvider(
        http,
        api_key=SecretStr(API_KEY),
        base_url=url + "/v2",
        retry=RetryPolicy(attempts=3, base_delay=0.01),
        poll_interval=0.1,
    )
    adapter.requests_per_minute = 60 * REQUESTS_PER_SECOND
    adapter.orders_per_minute = None  # this limit alone
    return adapter


@asynccontextmanager
async def two_bots(
    emulator: SlackEmulator,
    database: str,
    first: Mapping[str, Provider],
    second: Mapping[str, Provider],
) -> AsyncIterator[tuple[Stack, Stack]]:
    """Two bots on ``database``, each running jobs; Slack talks to the second one."""
    async with (
        bot_with(emulator, database, first) as first_bot,
        bot_with(emulator, database, second) as second_bot,
    ):
        yield first_bot, second_bot


async def approved_before_the_bots_start(database: str, rewards: int) -> list[int]:
    """``rewards`` requests for Runa cards, approved: a backlog of ``fulfil`` jobs, every one
    due when the bots start. They are stored and approved here, not through Slack, and their
    announcements are dropped: Slack's pace in the team channel and the approvers' DMs,
    another test's subject, would otherwise hold the bots up long after the orders."""
    ids = await runa_requests(database, rewards, [MAYA], JANE, TEAM)
    await approve_all(database, ids, ARJUN)
    return ids


async def test_two_bots_ordering_at_once_keep_the_providers_rate_limit_together(
    emulator: SlackEmulator, database: str
) -> None:
    # Orders stay pending a while, so each is looked at again a few times.
    fake = RunaState(rate_limit=FAKE_RATE_LIMIT, completion_delay=2.0)
    ids = await approved_before_the_bots_start(database, REWARDS)
    async with (
        serve(runa_app(fake)) as url,
        httpx.AsyncClient(headers={PROCESS_HEADER: "first"}) as first_http,
        httpx.AsyncClient(headers={PROCESS_HEADER: "second"}) as second_http,
        two_bots(
            emulator,
            database,
            {"runa": runa(first_http, url)},
            {"runa": runa(second_http, url)},
        ) as (_, second),
    ):
        for request_id in ids:
            await second.wait_status(request_id, Status.FULFILLED, 30)

    assert len(fake.order_posts) == REWARDS
    orders = [r for r in fake.requests if r.path.startswith("/v2/order")]
    assert {r.headers.get(PROCESS_HEADER) for r in orders} == {"first", "second"}
    # Unpaced, these would have come faster than the fake takes them.
    assert len(fake.requests) > FAKE_RATE_LIMIT[0]
    assert fake.rate_limited == 0


async def test_two_bots_posting_in_one_channel_keep_slacks_pace_together(
    emulator: SlackEmulator, database: str
) -> None:
    posts = SLACK_CHANNEL_BURST + 3
    sandbox = {"sandbox": SandboxProvider()}
    async with two_bots(emulator, database, sandbox, sandbox) as (first, second):
        parent = await first.runtime.gateway.client.chat_postMessage(channel=TEAM, text="Parent")
        gateways = (first.runtime.gateway, second.runtime.gateway)
        await asyncio.gather(
            *(gateways[n % 2].reply_to(TEAM, parent["ts"], f"Reply {n}") for n in range(posts))
        )
        # An answer someone waits for is never paced, however many went before it.
        started = time.monotonic()
        for n in range(posts):
            await gateways[n % 2].answer_in_dm(JANE, f"Answer {n}")
        assert time.monotonic() - started < SLACK_CHANNEL_INTERVAL

    replies = emulator.workspace.thread_replies(TEAM, parent["ts"])
    posted = sorted(float(m.ts) for m in replies)
    assert len(posted) == posts
    # A burst at once, then one a second.
    assert posted[SLACK_CHANNEL_BURST - 1] - posted[0] < SLACK_CHANNEL_INTERVAL
    for later in range(SLACK_CHANNEL_BURST, posts):
        turns_after_the_burst = later - SLACK_CHANNEL_BURST + 1
        assert posted[later] - posted[0] >= turns_after_the_burst * SLACK_CHANNEL_INTERVAL - 0.05
