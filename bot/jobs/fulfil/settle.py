"""Ending a provider order's requests without a delivery (failed, or for review)."""

from __future__ import annotations

import logging

from bot.domain import RewardRequest, Status
from bot.store import SYSTEM_ACTOR, Change, Job, Store

log = logging.getLogger(__name__)


async def settle(
    store: Store, job: Job, requests: list[RewardRequest], status: Status, reason: str
) -> None:
    """End the order of ``requests`` (all of them at once: they share it) without a
    delivery, fenced by ``job``'s claim; the transitions queue their announcements."""
    settled = await store.transition_all(
        [
            Change(
                r.id,
                Status.ORDERING,
                status,
                {"reason": reason},
                columns={"failure_reason": reason},
            )
            for r in requests
        ],
        SYSTEM_ACTOR,
        fence=job,
    )
    if not settled:
        # Only a cancellation moves an ordering request meanwhile, and it moves them all.
        log.info("requests %s had already moved on: not %s", [r.id for r in requests], status)
