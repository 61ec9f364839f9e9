"""Rewardbot's domain: money, the request life cycle and the reward request itself.

Nothing here knows about Slack payloads, SQL or vendor JSON.

Currencies follow one rule: **strict on input, lenient on reading back.** What comes in (the
reward form through :func:`parse_amount`, provider catalogs, the policy file) must be money in
today's ISO 4217 table: :func:`minor_units`, :func:`is_currency`, :data:`CurrencyCode` and
``Money(...)`` refuse anything else. What was stored was checked that way when it came in, but
the table (the date-versioned ``iso4217`` package) withdraws codes over time (HRK, SLL, ZWL), so
stored amounts are read with :meth:`Money.stored` and shown and rounded with
:func:`stored_minor_units`: a well-formed code the table no longer has keeps
:data:`DEFAULT_MINOR_UNITS` places and never stops an export, a job or App Home.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated

from iso4217 import Currency
from pydantic import AfterValidator, BaseModel, ConfigDict

_CURRENCY_SYMBOLS = {"£": "GBP", "$": "USD", "€": "EUR"}
# No card is worth a billion; anything near Decimal's 28 digits could not even be rounded.
TOO_LARGE = Decimal(10) ** 9
# The places of a stored code the ISO 4217 table no longer has (most currencies have two).
DEFAULT_MINOR_UNITS = 2
_WELL_FORMED_CODE = re.compile(r"[A-Z]{3}")


def minor_units(currency: str) -> int:
    """How many decimal places an amount in ``currency`` may have, from the ISO 4217 table
    (the maintained ``iso4217`` package). Raises ``ValueError`` for a code that is not an ISO
    4217 currency, or one that is not money: funds, precious metals and test codes (``XAU``,
    ``XDR``, ``XTS``) have no minor units, so no amount in them can be priced or rounded."""
    try:
        exponent = Currency(currency).exponent
    except ValueError:
        raise ValueError(f"{currency!r} is not an ISO 4217 currency code") from None
    if exponent is None:
        raise ValueError(
            f"{currency!r} is an ISO 4217 code without minor units (a fund, precious metal or "
            "test code), not a currency a card can be priced in"
        )
    return exponent


def is_currency(code: str) -> bool:
    """Whether ``code`` is a currency money can be in (see :func:`minor_units`)."""
    try:
        minor_units(code)
    except ValueError:
        return False
    return True


def stored_minor_units(currency: str) -> int:
    """The decimal places of an amount read back from storage (see the module docstring):
    :func:`minor_units` while the table knows the code, else :data:`DEFAULT_MINOR_UNITS`."""
    try:
        return minor_units(currency)
    except ValueError:
        return DEFAULT_MINOR_UNITS


def _check_currency(code: str) -> str:
    minor_units(code)
    return code


CurrencyCode = Annotated[str, AfterValidator(_check_currency)]


class Money(BaseModel):
    """An exact amount in one currency. Never a float."""

    model_config = ConfigDict(frozen=True)

    amount: Decimal
    currency: CurrencyCode

    @classmethod
    def stored(cls, amount: Decimal, currency: str) -> Money:
        """An amount read back from storage: its code was ISO 4217 money when it was stored
        and may have been withdrawn since, so only its form (three capital letters) is
        checked. Raises ``ValueError`` for a malformed code (a corrupt row)."""
        if not _WELL_FORMED_CODE.fullmatch(currency):
            raise ValueError(f"{currency!r} is not a currency code")
        return cls.model_construct(amount=amount, currency=currency)

    def __str__(self) -> str:
        return f"{self.amount:,.{stored_minor_units(self.currency)}f} {self.currency}"


# Limits on what a person may enter: the Slack forms cap their fields with them, and the reward
# service holds submitted messages, reasons and recipient lists to them too.
MESSAGE_MAX_CHARS = 1000
AMOUNT_MAX_CHARS = 200
REASON_MAX_CHARS = 500
# People rewarded by one request (a bulk reward): the recipient and up to 19 more.
MAX_RECIPIENTS = 20

_EMAIL = re.compile(r"[^@\s<>|]+@[^@\s<>|]+\.[^@\s<>|]+")


def looks_like_email(text: str) -> bool:
    """Whether ``text`` is one email address (the provider checks it properly)."""
    return bool(_EMAIL.fullmatch(text))


def month_title(month: str) -> str:
    """A budget month as people say it: ``2026-11`` → ``November 2026``."""
    return datetime.strptime(month, "%Y-%m").strftime("%B %Y")


def allocate(total: Money, weights: Sequence[Decimal]) -> list[Money]:
    """``total`` split in proportion to ``weights`` (one order's charge over its cards), in the
    currency's minor units; the rounding is left on the last share so the shares add up to
    ``total`` exactly."""
    unit = Decimal(1).scaleb(-stored_minor_units(total.currency))
    whole = sum(weights, Decimal(0))
    shares = [(total.amount * w / whole).quantize(unit, ROUND_HALF_EVEN) for w in weights[:-1]]
    shares.append(total.amount - sum(shares, Decimal(0)))
    # Copies of ``total``: its currency was checked when it was made (or read back).
    return [total.model_copy(update={"amount": share}) for share in shares]


def parse_amount(text: str, currency: str) -> Decimal:
    """Parse what a person typed as an amount in ``currency``.

    Accepts ``25``, ``25.50``, ``1,250.00`` and a leading symbol or trailing code that matches
    ``currency`` (``£25``, ``25 GBP``). Raises ``ValueError`` with a message fit for the user.
    """
    cleaned = text.strip()
    if not cleaned:
        raise ValueError("Enter an amount.")
    symbol_currency = _CURRENCY_SYMBOLS.get(cleaned[0])
    if symbol_currency is not None:
        if symbol_currency != currency:
            raise ValueError(f"This card is in {currency}, not {symbol_currency}.")
        cleaned = cleaned[1:].strip()
    code = re.fullmatch(r"(.*\d)\s*([A-Za-z]{3})", cleaned)
    if code is not None:
        if code.group(2).upper() != currency:
            raise ValueError(f"This card is in {currency}, not {code.group(2).upper()}.")
        cleaned = code.group(1)
    if not re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d*)?|\d+(\.\d*)?|\.\d+", cleaned):
        raise ValueError(
            f"{text.strip()[:40]!r} is not a number. Enter an amount like 25 or 25.50."
        )
    try:
        amount = Decimal(cleaned.replace(",", ""))
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only valid decimals
        raise ValueError("Enter an amount like 25 or 25.50.") from exc
    if amount <= 0:
        raise ValueError("The amount must be more than zero.")
    if amount >= TOO_LARGE:
        raise ValueError("That amount is too large for a gift card.")
    places = minor_units(currency)
    if amount != amount.quantize(Decimal(1).scaleb(-places)):
        whole = ": enter a whole number, like 25" if places == 0 else ""
        raise ValueError(f"{currency} amounts have at most {places} decimal places{whole}.")
    return amount.quantize(Decimal(1).scaleb(-places))


class FormField(StrEnum):
    """The fields of the reward form, as the use cases name them when they refuse one
    (:class:`~bot.errors.InvalidRequest`); the Slack view knows which block shows each."""

    RECIPIENT = "recipient"
    MORE_RECIPIENTS = "more_recipients"
    CARD = "card"
    AMOUNT = "amount"
    MESSAGE = "message"
    DELIVER_AT = "deliver_at"


class Status(StrEnum):
    """Where a reward request is in its life. Only :data:`TRANSITIONS` may change it."""

    # Waiting for a configured approver to approve or reject.
    PENDING_APPROVAL = "pending_approval"
    # Above the policy's threshold: one approver said yes, a different one (or finance) must too.
    AWAITING_SECOND_APPROVAL = "awaiting_second_approval"
    # Approved; the provider idempotency key exists, the order has not been started.
    APPROVED = "approved"
    # The order has been sent to the provider, or is about to be; the outcome is not yet known.
    ORDERING = "ordering"
    # The order completed and the redemption link was delivered to the recipient. Final.
    FULFILLED = "fulfilled"
    # An approver said no. Final.
    REJECTED = "rejected"
    # The provider definitively refused the order, or delivery failed. An approver may retry.
    FAILED = "failed"
    # The order may or may not exist and the provider cannot tell us safely: a person must
    # check with the provider before anything else is tried.
    NEEDS_REVIEW = "needs_review"
    # An approver settled a request that needed review outside the bot. Final.
    RESOLVED = "resolved"
    # The requester withdrew it before it was decided. Final.
    CANCELLED = "cancelled"
    # Nobody decided it within the policy's time limit. Final.
    EXPIRED = "expired"

    @property
    def is_settled(self) -> bool:
        """Come to rest: the requester is told, and only an approver's retry moves it on."""
        return self in _SETTLED


_UNDECIDED_ENDS = frozenset({Status.REJECTED, Status.CANCELLED, Status.EXPIRED})
_SETTLED = frozenset({*_UNDECIDED_ENDS, Status.FULFILLED, Status.FAILED, Status.RESOLVED})

TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.PENDING_APPROVAL: frozenset(
        {Status.APPROVED, Status.AWAITING_SECOND_APPROVAL, *_UNDECIDED_ENDS}
    ),
    Status.AWAITING_SECOND_APPROVAL: frozenset({Status.APPROVED, *_UNDECIDED_ENDS}),
    # A scheduled reward can be cancelled until the bot starts ordering it.
    Status.APPROVED: frozenset({Status.ORDERING, Status.FAILED, Status.CANCELLED}),
    # A provider's own scheduled order can be cancelled with it until its cut-off.
    Status.ORDERING: frozenset(
        {Status.FULFILLED, Status.FAILED, Status.NEEDS_REVIEW, Status.CANCELLED}
    ),
    Status.FULFILLED: frozenset(),
    Status.REJECTED: frozenset(),
    # An approver retries a failed order, under a new idempotency key.
    Status.FAILED: frozenset({Status.APPROVED}),
    # Review: order again under a new key (no order exists), check the existing order again,
    # or settle it by hand.
    Status.NEEDS_REVIEW: frozenset({Status.APPROVED, Status.ORDERING, Status.RESOLVED}),
    Status.RESOLVED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.EXPIRED: frozenset(),
}

# Waiting for a person to approve or reject: the requester may still cancel.
AWAITING_DECISION = frozenset({Status.PENDING_APPROVAL, Status.AWAITING_SECOND_APPROVAL})
# Nothing was or will be bought: the amount no longer counts against any budget.
RELEASES_BUDGET = frozenset({*_UNDECIDED_ENDS, Status.FAILED})


def is_announced(from_: Status, to: Status) -> bool:
    """Whether a change is shown in Slack; claiming an approved order is not news."""
    return to is not Status.ORDERING or from_ is Status.NEEDS_REVIEW


def decides_the_batch(from_: Status | None, to: Status) -> bool:
    """Whether a change is made to a whole batch at once (a decision, a cancellation or an
    expiry) rather than to one of its requests (an order's progress, a retry)."""
    if to is Status.APPROVED:
        return from_ in AWAITING_DECISION
    return to in _BATCH_DECISIONS


_BATCH_DECISIONS = frozenset({Status.AWAITING_SECOND_APPROVAL, *_UNDECIDED_ENDS})


class NewRewardRequest(BaseModel):
    """A validated request, before it is stored."""

    model_config = ConfigDict(frozen=True)

    requester_id: str
    recipient_id: str
    origin_channel_id: str
    face_value: Money
    provider: str
    product_id: str
    product_name: str
    message: str
    # The requester's team in the policy, if any: its managers approve, its budget pays.
    team: str | None = None
    # Two above the policy's threshold; fixed when the request is made.
    approvals_required: int = 1
    # The face value in the policy's currency, counted against budgets for ``budget_month``.
    budget_amount: Money | None = None
    budget_month: str | None = None
    # Scheduled delivery: the bot holds the approved order until then. ``None``: at once.
    deliver_at: datetime | None = None


class RewardRequest(NewRewardRequest):
    """A reward as it is stored: what was asked for, by whom, and where it stands."""

    id: int
    status: Status
    idempotency_key: str | None = None
    provider_order_id: str | None = None
    charged: Money | None = None
    # Who gave the first of two approvals.
    first_approved_by: str | None = None
    decided_by: str | None = None
    decision_reason: str | None = None
    failure_reason: str | None = None
    summary_channel: str | None = None
    summary_ts: str | None = None
    # Who the order was placed for, captured once so every retry sends the same order body.
    recipient_name: str | None = None
    recipient_email: str | None = None
    # Set when a delivery DM may have been sent: check Slack before sending it again.
    delivery_started_at: datetime | None = None
    summary_permalink: str | None = None
    # A provider scheduled the card natively: the order can be cancelled until then.
    cancel_before: datetime | None = None
    # The first request of the submission, when one submission rewarded several people.
    batch_id: int | None = None
    # In one provider order with other requests of its batch: that order's idempotency key
    # (``None``: ordered alone under ``idempotency_key``), and the request whose ``fulfil`` job
    # places it.
    order_key: str | None = None
    order_owner: int | None = None
    created_at: datetime
    updated_at: datetime


def is_scheduled(request: RewardRequest, now: datetime) -> bool:
    """Due for delivery at a time still in the future (``now``), and not yet settled."""
    return (
        request.deliver_at is not None
        and request.status in (*AWAITING_DECISION, Status.APPROVED, Status.ORDERING)
        and request.deliver_at > now
    )


def can_cancel(request: RewardRequest, now: datetime) -> bool:
    """Whether the requester may still withdraw ``request`` at ``now``: undecided; approved but
    held for its delivery time (nothing is ordered yet); or scheduled at a provider that can
    still cancel it."""
    return (
        request.status in AWAITING_DECISION
        or (request.status is Status.APPROVED and is_scheduled(request, now))
        or (
            request.status is Status.ORDERING
            and request.cancel_before is not None
            and now < request.cancel_before
        )
    )


class BudgetLimit(BaseModel):
    """A monthly ceiling a new request must fit under, checked in the transaction that stores
    it, so two requests made at once cannot both take the last of a budget."""

    model_config = ConfigDict(frozen=True)

    # Whose budget, as the refusal names it: "team Engineering's", "your".
    owner: str
    # The team whose spend counts; ``None`` counts the requester's own requests.
    team: str | None
    limit: Money
