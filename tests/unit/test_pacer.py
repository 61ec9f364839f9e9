"""The bot's pacer (:class:`bot.pacing.Pacer`) over a real store: a provider's limit as turns,
a 429's wait kept even by a provider without a documented limit, and a database that cannot
hand out turns holding nothing up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import cast

import pytest
from sqlalchemy.exc import OperationalError

from bot.pacing import PROVIDER_MARGIN, Pacer
from bot.store import Store


@pytest.fixture
async def store(database: str) -> AsyncIterator[Store]:
    store = await Store.open(database)
    yield store
    await store.close()


async def test_calls_to_a_provider_leave_its_limit_apart_with_a_margin(store: Store) -> None:
    pacer = Pacer(store)
    started = time.monotonic()
    for _ in range(3):
        await pacer.before_call("runa", 600)
    # The first at once, then a tenth of a second (600 a minute) and the margin each.
    assert time.monotonic() - started >= 2 * PROVIDER_MARGIN * 0.1


async def test_orders_keep_their_own_pace_and_reads_never_queue_behind_them(
    store: Store,
) -> None:
    pacer = Pacer(store)
    started = time.monotonic()
    orders = asyncio.gather(*(pacer.before_order("runa", 600) for _ in range(6)))
    await asyncio.sleep(0.05)  # every order has taken its turn: the last is 0.5 s off
    # A poll goes at once, however many orders wait for their turns.
    await pacer.before_call("runa", None)
    polled = time.monotonic() - started
    await orders
    assert time.monotonic() - started >= 5 * PROVIDER_MARGIN * 0.1
    assert polled < 0.3
    # A 429 holds orders off too: every order first takes its turn among all the calls.
    await pacer.rate_limited("runa", 0.3)
    started = time.monotonic()
    await pacer.before_call("runa", None)
    assert time.monotonic() - started >= 0.25


async def test_a_provider_without_a_documented_limit_still_waits_out_a_429(store: Store) -> None:
    pacer = Pacer(store)
    await pacer.before_call("ugiftme", None)
    await pacer.before_call("ugiftme", None)
    await pacer.rate_limited("ugiftme", 0.3)
    started = time.monotonic()
    await pacer.before_call("ugiftme", None)
    assert time.monotonic() - started >= 0.25


class _Unanswering:
    """A store whose database does not answer (locked, or gone)."""

    async def reserve_turn(self, key: str, interval_seconds: float) -> float:
        raise OperationalError("UPDATE pacing", None, TimeoutError("database is locked"))

    async def hold_off(self, key: str, seconds: float) -> None:
        raise OperationalError("UPDATE pacing", None, TimeoutError("database is locked"))


async def test_a_database_that_cannot_hand_out_turns_lets_calls_go_unpaced(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pacer = Pacer(cast(Store, _Unanswering()))
    await pacer.rate_limited("runa", 30)
    await pacer.before_call("runa", 300)
    await pacer.before_post("C0TEAMWINS")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "cannot hold provider:runa off (database is locked)",
        "no turn for provider:runa (database is locked); going ahead unpaced",
        "no turn for slack:C0TEAMWINS (database is locked); going ahead unpaced",
    ]
