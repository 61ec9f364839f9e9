"""Benchmarks 3, 4 (and 5): 300 rewards approved at once against a provider that takes 300
orders a minute, and the bot's peak memory meanwhile.

The fake Runa (:mod:`tests.fakes.runa`) answers an order above 300 in any minute with a 429
and ``Retry-After``, and completes each order 1 s after it was placed; the bot polls (no
webhook secret, Runa's default set-up). The 300 requests are stored beforehand; the approval
of all of them is one transaction, made while the bot runs. Figures: orders a second, from the
first order to the last, as a share of the provider's limit; the requests not fulfilled; the
429s; and the peak resident memory of each bot process.
"""

from __future__ import annotations

from pathlib import Path

from bench.harness import (
    APPROVER,
    CHANNEL,
    PEOPLE,
    RECIPIENT,
    Goals,
    bots,
    kind_of,
    peak_rss_mb,
    requester,
)
from bot.domain import Status
from bot.offline.emulator import SlackEmulator
from bot.store import Store
from tests.fakes import serve
from tests.fakes.runa import API_KEY, RunaState
from tests.fakes.runa import app as runa_app
from tests.support import approve_all, poll, runa_requests

REWARDS = 300
ORDERS_PER_MINUTE = 300
COMPLETES_AFTER = 1.0
SETTLE_WITHIN = 300.0


async def _not_fulfilled(database: str) -> int:
    store = await Store.open(database)
    try:
        counts = await store.count_by_status()
    finally:
        await store.close()
    return sum(n for status, n in counts.items() if status is not Status.FULFILLED)


async def run(
    emulator: SlackEmulator, database: str, processes: int, logs: Path, goals: Goals
) -> None:
    label = f"{processes} process{'es' if processes > 1 else ''} on {kind_of(database)}"
    fake = RunaState(
        completion_delay=COMPLETES_AFTER,
        rate_limit=(ORDERS_PER_MINUTE, 60.0),
        rate_limit_orders_only=True,
    )
    requesters = [requester(n) for n in range(PEOPLE)]
    ids = await runa_requests(database, REWARDS, requesters, RECIPIENT, CHANNEL)
    async with serve(runa_app(fake)) as runa_url:
        env = {
            "REWARDBOT_PROVIDERS": "runa",
            "RUNA_API_KEY": API_KEY,
            "RUNA_API_URL": runa_url + "/v2",
            # The emulator keeps no Slack rate limit; Slack's pace is not what is measured.
            "REWARDBOT_SLACK_PACING": "false",
        }
        async with bots(emulator, database, processes, logs, env) as started:
            await approve_all(database, ids, APPROVER)

            async def all_fulfilled() -> bool:
                return await _not_fulfilled(database) == 0

            await poll(all_fulfilled, SETTLE_WITHIN, every=1.0)
            rss = [peak_rss_mb(bot) for bot in started]
    failed = await _not_fulfilled(database)
    # Each order once (a post answered 429 and sent again is one order).
    placed = sorted(order.created_at for order in fake.orders.values())
    spread = placed[-1] - placed[0] if len(placed) > 1 else float("inf")
    rate = (len(placed) - 1) / spread
    share = rate / (ORDERS_PER_MINUTE / 60)
    print(
        f"{REWARDS} rewards approved at once, {label}: {len(placed)} orders at {rate:.2f}/s "
        f"= {share:.0%} of the provider's {ORDERS_PER_MINUTE}/min; {failed} not fulfilled "
        f"within {SETTLE_WITHIN:.0f} s; {fake.rate_limited} answered 429"
    )
    print(f"peak RSS across the run, {label}: " + ", ".join(f"{mb:.0f} MB" for mb in rss))
    goals.check(f">= 90% of the provider's limit ({label})", share >= 0.9)
    goals.check(f"0 failures ({label})", failed == 0)
    goals.check(f"peak RSS < 150 MB ({label})", max(rss) < 150)
