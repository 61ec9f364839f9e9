"""The reward form as submitted, and the checks of its fields that need nobody's answer."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict

from bot.domain import MESSAGE_MAX_CHARS, FormField, Money, parse_amount
from providers.base import Product


class RewardDraft(BaseModel):
    """What a manager submitted, before validation. Its refusals name the form's fields
    (:class:`~bot.domain.FormField`) and, for an amount of their own, the person."""

    model_config = ConfigDict(frozen=True)

    requester_id: str
    origin_channel_id: str
    # Slack's id of the submitted modal: the same submission is never stored twice.
    submission_key: str
    recipient_id: str | None
    product_key: str | None
    amount_text: str | None
    message: str | None
    # The date and time picked for delivery (Unix seconds), or ``None`` for as soon as approved.
    deliver_at: int | None = None
    # Bulk rewards: more people to give the same card, each their own.
    more_recipient_ids: tuple[str, ...] = ()
    # Their own amounts, where given (user id → amount typed); the others get ``amount_text``.
    amounts_for: Mapping[str, str] = {}


class CheckedDraft(BaseModel):
    """A draft whose every field is valid, before the policy has looked at it."""

    model_config = ConfigDict(frozen=True)

    requester_id: str
    origin_channel_id: str
    # The recipient first, then the extra people, each once.
    recipients: tuple[str, ...]
    # What the card is worth for each of ``recipients``, in the same order.
    face_values: tuple[Money, ...]
    product: Product
    message: str
    deliver_at: datetime | None


def message_error(message: str) -> str | None:
    if not message:
        return "Say what the reward is for."
    if len(message) > MESSAGE_MAX_CHARS:
        return f"Keep the message under {MESSAGE_MAX_CHARS} characters."
    return None


# Scheduling closer than this could not be cancelled in practice; further is surely a typo.
_SOONEST_SCHEDULE = timedelta(minutes=10)
_LATEST_SCHEDULE = timedelta(days=366)


def delivery_time(epoch: int) -> tuple[datetime | None, str | None]:
    """The picked delivery time, or why it cannot be used."""
    now = datetime.now(UTC)
    try:
        when = datetime.fromtimestamp(epoch, UTC)
    except (OverflowError, OSError, ValueError):
        return None, "That is not a date and time."
    if when < now + _SOONEST_SCHEDULE:
        return None, "Pick a time at least 10 minutes from now, or leave it empty to send now."
    if when > now + _LATEST_SCHEDULE:
        return None, "Pick a time within the next year."
    return when, None


def priced(
    product: Product, draft: RewardDraft, extras: list[str]
) -> tuple[list[Money], dict[FormField, str], dict[str, str]]:
    """What the card is worth for the recipient and each of ``extras``, in that order; why
    the amount field is wrong, if it is; and why each wrong amount of its own is (by person)."""
    errors: dict[FormField, str] = {}
    own_errors: dict[str, str] = {}
    face_values: list[Money] = []
    try:
        face_values = _face_values(product, draft.amount_text or "", 1 + len(extras))
    except ValueError as exc:
        errors[FormField.AMOUNT] = str(exc)
    if draft.amounts_for and len(set(face_values)) > 1:
        errors[FormField.AMOUNT] = (
            "Give one amount here when you give people their own amounts below."
        )
    for index, person in enumerate(extras, start=1):
        own = draft.amounts_for.get(person)
        if own is not None and face_values:
            try:
                face_values[index] = _face_value(product, own)
            except ValueError as exc:
                own_errors[person] = str(exc)
    return face_values, errors, own_errors


# "25; 40" or "25, 40": a comma followed by a space separates amounts, "1,250" is one amount.
_AMOUNT_SEPARATOR = re.compile(r"\s*;\s*|,\s+")


def _face_values(product: Product, amount_text: str, people: int) -> list[Money]:
    """One amount for everyone, or one per person in the order the form lists them."""
    texts = [t for t in _AMOUNT_SEPARATOR.split(amount_text.strip()) if t] or [""]
    if len(texts) not in (1, people):
        raise ValueError(
            f"Give one amount for everyone, or one for each of the {people} people, in order "
            "(recipient first), like 25; 40."
        )
    amounts = [_face_value(product, text) for text in texts]
    return amounts * people if len(amounts) == 1 else amounts


def _face_value(product: Product, text: str) -> Money:
    """One amount, which the card must be sold for."""
    amount = parse_amount(text, product.currency)
    if not product.allows(amount):
        raise ValueError(f"{product.name} is available for {product.describe_allowed()}.")
    return Money(amount=amount, currency=product.currency)
