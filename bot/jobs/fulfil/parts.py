"""Whose part of a completed order is whose: each request's card and share of the charge.

Read again on every run of the ``fulfil`` job and by every ``resend``, so both give each
recipient the same card.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from bot.domain import RewardRequest, allocate
from providers.base import IssuedCard, OrderResult


def own_part(
    request: RewardRequest, in_order: list[RewardRequest], result: OrderResult
) -> OrderResult | None:
    """``request``'s part of a completed order: its card (its own, in a shared order) and its
    share of the charge, split over ``in_order`` (every request the order was placed for) in
    proportion to their face values. ``None`` if a shared order lists no card for it."""
    charged = None
    if result.charged is not None and in_order:
        shares = allocate(result.charged, [r.face_value.amount for r in in_order])
        charged = dict(zip([r.id for r in in_order], shares, strict=True)).get(request.id)
    if request.order_key is None:
        return result.model_copy(update={"charged": charged})
    card = cards_by_request(in_order, result.cards).get(request.id)
    if card is None:
        return None
    # Only this recipient's card: the others' links stay out of their part.
    return result.model_copy(
        update={"redemption": card.redemption, "charged": charged, "cards": (card,)}
    )


def cards_by_request(
    requests: list[RewardRequest], cards: Sequence[IssuedCard]
) -> dict[int, IssuedCard]:
    """Whose is each card a shared order lists. By address where the provider lists the one
    it emailed each card to; otherwise by face value, as cards of one product and face value
    are interchangeable: the k-th request (by id) gets the k-th card (by the provider's card
    id), so every reading of the order, a resend's included, gives everyone the same card."""
    by_email: dict[str, list[IssuedCard]] = {}
    by_face: dict[Decimal | None, list[IssuedCard]] = {}
    for card in sorted(cards, key=lambda c: c.card_id):
        if card.email:
            by_email.setdefault(card.email, []).append(card)
        else:
            by_face.setdefault(card.face_value, []).append(card)
    owned: dict[int, IssuedCard] = {}
    for request in sorted(requests, key=lambda r: r.id):
        email = (request.recipient_email or "").strip().lower()
        # Each card goes to one request only, even if two share an address.
        pool = by_email.get(email) or by_face.get(request.face_value.amount)
        if pool:
            owned[request.id] = pool.pop(0)
    return owned
