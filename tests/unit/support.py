"""Shared unit-test helpers (test modules never import each other)."""

from __future__ import annotations

from decimal import Decimal

from bot.domain import Money, NewRewardRequest


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
