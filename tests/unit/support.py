"""Shared unit-test helpers (test modules never import each other)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bot.domain import Money, NewRewardRequest, RewardRequest, Status


def new_request() -> NewRewardRequest:
    """A valid sandbox request for 25.00 GBP, from UREQ to UREC, not yet stored."""
    return NewRewardRequest(
        requester_id="UREQ",
        recipient_id="UREC",
        origin_channel_id="CGEN",
        face_value=Money(amount=Decimal("25.00"), currency="GBP"),
        provider="sandbox",
        product_id="SBX-BOOKS-GBP",
        product_name="Sandbox Books",
        message="thanks",
    )


def stored_request(*, at: datetime | None = None, **changes: Any) -> RewardRequest:
    """Reward #7, made ``at`` (now): U0MAYA asks for a 25.00 GBP Sandbox Books card for U0JANE,
    waiting for its approval. ``changes`` replace any field."""
    made = at or datetime.now(UTC)
    fields: dict[str, Any] = {
        "id": 7,
        "status": Status.PENDING_APPROVAL,
        "requester_id": "U0MAYA",
        "recipient_id": "U0JANE",
        "origin_channel_id": "C0TEAMWINS",
        "face_value": Money(amount=Decimal("25.00"), currency="GBP"),
        "provider": "sandbox",
        "product_id": "SBX-BOOKS-GBP",
        "product_name": "Sandbox Books",
        "message": "For shipping the release",
        "created_at": made,
        "updated_at": made,
    }
    return RewardRequest(**(fields | changes))
