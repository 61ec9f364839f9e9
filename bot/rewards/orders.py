"""How an approved request's provider order is keyed, grouped and timed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from bot.domain import RewardRequest
from providers.base import Provider

# Approved closer than this to its delivery time, a card the provider could schedule itself is
# held by the bot instead: it could hardly be cancelled at the provider in time.
NATIVE_SCHEDULE_LEAD = timedelta(minutes=10)

# For each request of a shared order, its ``order_key`` and ``order_owner``.
SharedOrders = dict[int, dict[str, str | int]]


def new_idempotency_key(request_id: int) -> str:
    return f"rewardbot-{request_id}-{uuid.uuid4().hex}"


def fresh_order(request_id: int) -> dict[str, str | None]:
    """The columns that start a request's order afresh (order again, retry): a new key, on
    its own even if it was part of a shared order, and nothing left of the previous attempt's
    order or delivery."""
    return {
        "idempotency_key": new_idempotency_key(request_id),
        "order_key": None,
        "order_owner": None,
        "provider_order_id": None,
        "delivery_started_at": None,
        "delivery_claim": None,
        "failure_reason": None,
    }


def shared_orders(batch: list[RewardRequest], provider: Provider | None) -> SharedOrders:
    """Group a batch into as few provider orders as its provider takes (a request absent
    from the answer is ordered alone)."""
    size = provider.max_recipients_per_order if provider is not None else 1
    shared: SharedOrders = {}
    for start in range(0, len(batch), size):
        members = batch[start : start + size]
        if len(members) > 1:
            owner = members[0].id
            key = new_idempotency_key(owner)
            for member in members:
                shared[member.id] = {"order_key": key, "order_owner": owner}
    return shared


def owns_its_order(request: RewardRequest, shared: SharedOrders) -> bool:
    """Whether the request's fulfilment places its order: alone, or as the shared order's
    owner."""
    return shared.get(request.id, {}).get("order_owner", request.id) == request.id


def order_time(request: RewardRequest, provider: Provider | None) -> datetime | None:
    """When to place an approved order: at once, unless it is scheduled and the bot holds
    it until then (a provider that schedules natively gets it at once, with the time)."""
    when = request.deliver_at
    if when is None or when <= datetime.now(UTC):
        return None
    native = provider is not None and provider.schedules_natively
    return None if native and when > datetime.now(UTC) + NATIVE_SCHEDULE_LEAD else when
