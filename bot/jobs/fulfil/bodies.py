"""The provider order bodies, built only from stored state so every attempt sends the same."""

from __future__ import annotations

from datetime import datetime

from bot.domain import RewardRequest
from providers.base import OrderLine, OrderRequest, Recipient, SharedOrder


def order_for(request: RewardRequest) -> OrderRequest:
    """The order body: built only from stored state, so it is identical on every attempt."""
    assert request.idempotency_key is not None, "approval always stores the key"
    return OrderRequest(
        idempotency_key=request.idempotency_key,
        product_id=request.product_id,
        face_value=request.face_value,
        reference=f"rewardbot-{request.id}",
        recipient=_recipient(request),
        message=request.message,
        send_at=send_at(request),
    )


def shared_order_for(requests: list[RewardRequest]) -> SharedOrder:
    """One order for several requests of a batch, from stored state like :func:`order_for`.
    The same requests are in it on every attempt, in the same order: they are claimed
    together, and until the order id is stored they only leave it together (settled in one
    transaction, reviewed together: see ``Review.order_again``)."""
    first = requests[0]
    assert first.order_key is not None, "approval stores a shared order's key"
    return SharedOrder(
        idempotency_key=first.order_key,
        product_id=first.product_id,
        reference=f"rewardbot-{first.order_owner or first.id}",
        message=first.message,
        send_at=send_at(first),
        lines=tuple(OrderLine(recipient=_recipient(r), face_value=r.face_value) for r in requests),
    )


def send_at(request: RewardRequest) -> datetime | None:
    """When the provider sends the card itself; ``None`` if the bot delivers it."""
    # Set at the claim when the provider schedules the card itself.
    return request.deliver_at if request.cancel_before is not None else None


def _recipient(request: RewardRequest) -> Recipient:
    return Recipient(
        slack_user_id=request.recipient_id,
        name=request.recipient_name or request.recipient_id,
        email=request.recipient_email,
    )
