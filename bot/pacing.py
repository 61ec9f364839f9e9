"""Limits that protect a provider or Slack, kept by every process of the bot together: each
paced call waits for a turn handed out by the database they share
(:meth:`~bot.store.Store.reserve_turn`), so ten processes make calls no faster than one would.

The keys: ``provider:<name>`` (the provider's documented rate limit on every call, and a 429's
wait), ``provider:<name>:orders`` (its limit on placing orders) and ``slack:<channel>``
(Slack's pace for posting in one channel).
"""

from __future__ import annotations

import asyncio
import logging

from bot.store import DATABASE_ERRORS, Store, database_problem

log = logging.getLogger(__name__)

# Calls to a provider leave this much further apart than its documented limit asks: arrivals
# jitter with the network, and a limit counted over a sliding window takes a call that arrives
# a little early as one too many. 5 %: 300 a minute become turns 0.21 s apart, at most 286 in
# any minute, while the bot still keeps 95 % of what the provider allows.
PROVIDER_MARGIN = 1.05
# Slack's rate-limit docs: posting messages, "1 per second" per channel, "short bursts >1
# allowed" (how short, they do not say).
SLACK_CHANNEL_INTERVAL = 1.0
# How many messages go into a quiet channel at once before that pace applies (the allowance
# comes back at the pace). Ten: a reward's whole life in its channel (summary, updates, thread
# replies) or a small bulk reward's shows at once, as people expect; a flood (a dozen rewards
# at once) is paced. With no burst at all, each reward's thread lagged seconds behind.
SLACK_CHANNEL_BURST = 10


class Pacer:
    """Turns at a shared pace: the :class:`~providers.base.CallPacer` of every provider
    adapter, and the pace of the job-driven messages of :class:`~bot.slack.gateway.SlackGateway`.

    A pace protects the provider or Slack; it is not what keeps a reward correct. A database
    that cannot hand out a turn lets the call go unpaced (logged) rather than fail it: what
    else the call needs from the database fails it anyway, and a call that needs nothing else
    (a catalog refresh) should not fail for want of a turn.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    async def before_call(self, provider: str, requests_per_minute: int | None) -> None:
        interval = 0.0
        if requests_per_minute is not None:
            interval = PROVIDER_MARGIN * 60.0 / requests_per_minute
        # Taken even without a limit: a 429's hold-off (below) is waited out here.
        await self._wait_for_turn(f"provider:{provider}", interval)

    async def before_order(self, provider: str, orders_per_minute: int) -> None:
        interval = PROVIDER_MARGIN * 60.0 / orders_per_minute
        await self._wait_for_turn(f"provider:{provider}:orders", interval)

    async def rate_limited(self, provider: str, retry_after: float) -> None:
        key = f"provider:{provider}"
        try:
            await self._store.hold_off(key, retry_after)
        except DATABASE_ERRORS as exc:
            log.warning("cannot hold %s off (%s)", key, database_problem(exc))

    async def before_post(self, channel: str) -> None:
        """Return when the next message may be posted, or updated, in ``channel``."""
        await self._wait_for_turn(f"slack:{channel}", SLACK_CHANNEL_INTERVAL, SLACK_CHANNEL_BURST)

    async def _wait_for_turn(self, key: str, interval: float, burst: int = 1) -> None:
        """Take ``key``'s next turn and wait for it, less ``burst - 1`` turns: then ``burst``
        calls go at once after a quiet spell, and every one after them at the pace (the
        turns are a generic cell rate algorithm's theoretical arrival times)."""
        try:
            wait = await self._store.reserve_turn(key, interval)
        except DATABASE_ERRORS as exc:
            log.warning("no turn for %s (%s); going ahead unpaced", key, database_problem(exc))
            return
        wait -= (burst - 1) * interval
        if wait > 0:
            await asyncio.sleep(wait)
