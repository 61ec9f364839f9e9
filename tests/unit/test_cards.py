"""Whose card is whose in a shared order: the same answer on every reading."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

from pydantic import SecretStr

from bot.domain import Money, RewardRequest, Status
from bot.jobs.fulfil.parts import cards_by_request, own_part
from providers.base import IssuedCard, OrderResult, OrderState, Redemption

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def request(request_id: int, amount: str, email: str | None = None) -> RewardRequest:
    return RewardRequest(
        id=request_id,
        requester_id="U0MAYA",
        recipient_id=f"U{request_id}",
        origin_channel_id="C0TEAM",
        face_value=Money(amount=Decimal(amount), currency="GBP"),
        provider="runa",
        product_id="COFFEE-GB",
        product_name="Coffee",
        message="",
        status=Status.ORDERING,
        order_key="rewardbot-1-shared",
        order_owner=1,
        recipient_email=email,
        created_at=NOW,
        updated_at=NOW,
    )


def link_card(card_id: str, amount: str) -> IssuedCard:
    url = SecretStr(f"https://payout.invalid/{card_id}")
    return IssuedCard(card_id=card_id, face_value=Decimal(amount), redemption=Redemption(url=url))


def test_cards_go_by_face_value_in_id_order_however_the_provider_lists_them() -> None:
    requests = [request(1, "25"), request(2, "40"), request(3, "25.00")]
    cards = [link_card("E-1", "25"), link_card("E-2", "40"), link_card("E-3", "25")]
    expected = {1: "E-1", 2: "E-2", 3: "E-3"}
    for _ in range(20):
        shuffled = random.sample(cards, len(cards))
        owned = cards_by_request(random.sample(requests, 3), shuffled)
        assert {i: card.card_id for i, card in owned.items()} == expected


def test_a_missing_card_leaves_the_last_of_that_value_without_one() -> None:
    owned = cards_by_request([request(1, "25"), request(2, "25")], [link_card("E-9", "25")])
    assert {i: c.card_id for i, c in owned.items()} == {1: "E-9"}


def test_emailed_cards_go_by_address() -> None:
    requests = [request(1, "25", "Jane@Example.com "), request(2, "25", "omar@example.com")]
    cards = [IssuedCard(email="omar@example.com"), IssuedCard(email="jane@example.com")]
    owned = cards_by_request(requests, cards)
    assert {i: c.email for i, c in owned.items()} == {
        1: "jane@example.com",
        2: "omar@example.com",
    }


def test_own_part_is_the_own_card_and_an_exact_share_of_the_charge() -> None:
    requests = [request(1, "10"), request(2, "10"), request(3, "10")]
    result = OrderResult(
        provider_order_id="O-1",
        state=OrderState.COMPLETED,
        charged=Money(amount=Decimal("28.50"), currency="GBP"),
        cards=tuple(link_card(f"E-{i}", "10") for i in (1, 2, 3)),
    )
    parts = [own_part(r, requests, result) for r in requests]
    assert [p.charged.amount for p in parts if p and p.charged] == [
        Decimal("9.50"),
        Decimal("9.50"),
        Decimal("9.50"),
    ]
    assert [p.redemption for p in parts if p] == [c.redemption for c in result.cards]
    assert own_part(request(4, "10"), requests, result) is None


def test_an_unusable_card_keeps_its_place_so_nobody_gets_another_persons() -> None:
    requests = [request(1, "25"), request(2, "25"), request(3, "25")]
    usable = [link_card("E-1", "25"), link_card("E-2", "25"), link_card("E-3", "25")]
    expired = IssuedCard(card_id="E-1", face_value=Decimal(25))
    owned = cards_by_request(requests, [expired, *usable[1:]])
    assert owned[1].redemption is None
    assert [owned[i].card_id for i in (2, 3)] == ["E-2", "E-3"]
