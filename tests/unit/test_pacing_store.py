"""Turns at one pace for every process (``Store.reserve_turn``, ``Store.hold_off``): two stores
on one database stand for two processes of a fleet."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest

from bot.store import Store

KEY = "provider:runa"
# Long enough that a turn's place in the queue cannot be mistaken for timing noise; nothing
# waits for it (the tests read the waits they are given).
INTERVAL = 10.0


@pytest.fixture
async def two_processes(database: str) -> AsyncIterator[tuple[Store, Store]]:
    first, second = await Store.open(database), await Store.open(database)
    yield first, second
    await first.close()
    await second.close()


def place_in_queue(wait: float, interval: float = INTERVAL) -> int:
    """How many turns come before one given ``wait``, when they were all taken at once."""
    place = round(wait / interval)
    assert abs(wait - place * interval) < 1.0, f"{wait}s is not a whole number of turns"
    return place


async def test_two_processes_taking_turns_at_once_get_each_its_own_an_interval_apart(
    two_processes: tuple[Store, Store],
) -> None:
    first, second = two_processes
    taken: list[tuple[float, float]] = []  # (when the turn was given, its wait)

    async def take(store: Store) -> None:
        wait = await store.reserve_turn(KEY, INTERVAL)
        taken.append((time.time(), wait))

    await asyncio.gather(*(take(store) for _ in range(10) for store in (first, second)))

    waits = [wait for _, wait in taken]
    assert sorted(place_in_queue(wait) for wait in waits) == list(range(20))
    turns = sorted(given + wait for given, wait in taken)
    assert all(later - earlier >= INTERVAL - 0.5 for earlier, later in itertools.pairwise(turns))


async def test_a_hold_off_holds_back_every_process_and_never_brings_a_turn_forward(
    two_processes: tuple[Store, Store],
) -> None:
    told_429, other = two_processes
    await told_429.hold_off(KEY, 30)
    assert place_in_queue(await other.reserve_turn(KEY, 1.0), 30.0) == 1
    assert 30.0 < await told_429.reserve_turn(KEY, 1.0) < 31.5
    # A shorter wait asked later leaves the turns already queued where they were.
    await other.hold_off(KEY, 5)
    assert 31.0 < await told_429.reserve_turn(KEY, 1.0) < 32.5


async def test_keys_keep_their_own_pace_and_an_idle_key_owes_nothing(
    two_processes: tuple[Store, Store],
) -> None:
    first, second = two_processes
    assert await first.reserve_turn("slack:C1", 0.2) == 0.0
    assert await second.reserve_turn("slack:C2", 0.2) == 0.0
    assert 0.0 < await second.reserve_turn("slack:C1", 0.2) <= 0.2
    await asyncio.sleep(0.5)
    assert await first.reserve_turn("slack:C1", 0.2) == 0.0
