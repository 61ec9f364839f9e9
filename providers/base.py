"""What every gift-card provider adapter offers the bot, in domain terms.

Adapters return these models, never vendor JSON; vendor response models stay private to their
module. Errors are raised from the taxonomy in :mod:`providers.errors`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar, Protocol, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from bot.domain import CurrencyCode, Money
from providers.errors import (
    IdempotencyConflict,
    OrderDeclined,
    ProviderConfigError,
    WebhookRejected,
)


class Product(BaseModel):
    """A card type a manager can pick, with the face values the provider accepts for it."""

    model_config = ConfigDict(frozen=True)

    provider: str
    product_id: str
    name: str
    currency: CurrencyCode
    # Either a list of fixed face values, or a min/max range (inclusive).
    denominations: tuple[Decimal, ...] = ()
    min_value: Decimal | None = None
    max_value: Decimal | None = None

    @model_validator(mode="after")
    def _one_kind_of_denomination(self) -> Product:
        ranged = self.min_value is not None and self.max_value is not None
        if bool(self.denominations) == ranged:
            raise ValueError("a product has either fixed denominations or a min/max range")
        return self

    @classmethod
    def from_face_values(
        cls,
        *,
        provider: str,
        product_id: str,
        name: str,
        currency: str,
        fixed: Iterable[Decimal] | None = None,
        min_value: Decimal | None = None,
        max_value: Decimal | None = None,
    ) -> Product:
        """A catalog entry from a vendor's face values: the ``fixed`` ones (finite, positive,
        deduplicated, sorted) when there are any, else the ``min_value``..``max_value`` range
        (finite, 0 < min <= max). Raises ``ValueError`` (naming the problem) if neither is
        usable or the currency is not an ISO code."""
        values = tuple(sorted({v for v in fixed or () if v.is_finite() and v > 0}))
        low, high = (None, None) if values else (min_value, max_value)
        if not values:
            if low is None or high is None or not (low.is_finite() and high.is_finite()):
                raise ValueError("no face values we can read")
            if not Decimal(0) < low <= high:
                raise ValueError(f"an empty range of face values ({low} to {high})")
        return cls(
            provider=provider,
            product_id=product_id,
            name=name,
            currency=currency,
            denominations=values,
            min_value=low,
            max_value=high,
        )

    @property
    def key(self) -> str:
        """Stable identifier across providers, used as the select option value."""
        return f"{self.provider}:{self.product_id}"

    def allows(self, amount: Decimal) -> bool:
        if self.denominations:
            return amount in self.denominations
        assert self.min_value is not None and self.max_value is not None
        return self.min_value <= amount <= self.max_value

    def describe_allowed(self) -> str:
        """The allowed face values, as a person would say them."""
        if self.denominations:
            values = ", ".join(
                str(Money(amount=d, currency=self.currency).amount) for d in self.denominations
            )
            return f"{values} {self.currency}"
        return f"{self.min_value} to {self.max_value} {self.currency}"


class Recipient(BaseModel):
    """Who the card is for. ``email`` comes from their Slack profile, for providers that
    deliver by email themselves."""

    model_config = ConfigDict(frozen=True)

    slack_user_id: str
    name: str
    email: str | None = None


class OrderRequest(BaseModel):
    """One gift card to buy. The same ``idempotency_key`` must always carry the same body."""

    model_config = ConfigDict(frozen=True)

    idempotency_key: str
    product_id: str
    face_value: Money
    # Our own reference (``rewardbot-<request id>``), sent where the provider keeps one, so
    # an order can be found again without its id.
    reference: str
    recipient: Recipient
    message: str
    # When the provider should send the card, for providers that schedule natively
    # (``Provider.schedules_natively``); ``None`` sends it at once.
    send_at: datetime | None = None


class OrderLine(BaseModel):
    """One recipient's card in a :class:`SharedOrder`."""

    model_config = ConfigDict(frozen=True)

    recipient: Recipient
    face_value: Money


class SharedOrder(BaseModel):
    """Several recipients' cards of one product in one provider order, for providers that take
    more than one recipient per order (``Provider.max_recipients_per_order``). Like an
    :class:`OrderRequest`, the same ``idempotency_key`` must always carry the same lines."""

    model_config = ConfigDict(frozen=True)

    idempotency_key: str
    product_id: str
    reference: str
    message: str
    send_at: datetime | None = None
    lines: tuple[OrderLine, ...] = Field(min_length=1)

    @classmethod
    def of(cls, order: OrderRequest) -> SharedOrder:
        """A one-recipient order in the shared shape (adapters that build both bodies alike)."""
        return cls(
            idempotency_key=order.idempotency_key,
            product_id=order.product_id,
            reference=order.reference,
            message=order.message,
            send_at=order.send_at,
            lines=(OrderLine(recipient=order.recipient, face_value=order.face_value),),
        )


class SendRecord(BaseModel):
    """What is known about the earlier sends of one order's idempotency key."""

    model_config = ConfigDict(frozen=True)

    # A digest of the body the key was first sent with: a key must always carry the same body.
    fingerprint: str | None = None
    first_sent_at: datetime | None = None
    last_sent_at: datetime | None = None
    sends: int = 0
    # The first send whose outcome is not known yet (an order may exist); ``None`` when no
    # send is outstanding: never sent, or the provider said what became of it.
    unsettled_since: datetime | None = None
    # Whether the provider answered the last send, if only with an error (a 5xx): it then
    # finished with it. A timeout or a dropped connection is no answer.
    last_answered: bool = False


class SendLog:
    """The record of an order key's sends, kept where a later attempt will find it.

    An adapter calls :meth:`sending` right before every request that may place the order
    and reports what came back (:meth:`unanswered`, :meth:`settled`); it reads
    :attr:`record` to know what earlier attempts did. This base keeps the record in memory,
    for the length of one call (or of one test); the bot passes one backed by its database,
    written before each send and fenced by the job's claim, so a run taken over after a
    restart or by another process knows exactly what the first one did.
    """

    def __init__(
        self, record: SendRecord | None = None, attributed: frozenset[str] = frozenset()
    ) -> None:
        self._record = record or SendRecord()
        # This provider's orders already known to be other rewards': a lookup for an order of
        # unknown outcome must never take one of them for this one.
        self.attributed = attributed

    @property
    def record(self) -> SendRecord:
        return self._record

    def now(self) -> datetime:
        """The clock the record's times are read against."""
        return datetime.now(UTC)

    async def sending(self, fingerprint: str) -> SendRecord:
        """Record a send about to be made; returns the record as it was before it. Raises
        :class:`IdempotencyConflict` if the key was sent before with another body."""
        before = self._record
        if before.fingerprint is not None and before.fingerprint != fingerprint:
            raise IdempotencyConflict(
                "This reward's idempotency key was already sent with different order details "
                "(recipient, amount or card); an order may exist. Check the provider's order "
                "list before ordering again."
            )
        await self._write_send(fingerprint)
        now = self.now()
        self._record = before.model_copy(
            update={
                "fingerprint": before.fingerprint or fingerprint,
                "first_sent_at": before.first_sent_at or now,
                "last_sent_at": now,
                "sends": before.sends + 1,
                "unsettled_since": before.unsettled_since or now,
                "last_answered": False,
            }
        )
        return before

    async def unanswered(self, *, answered: bool) -> None:
        """The last send's outcome is unknown; ``answered``: the provider did answer it."""
        await self._write_unanswered(answered)
        self._record = self._record.model_copy(update={"last_answered": answered})

    async def settled(self) -> None:
        """The provider said what became of every send so far (an order, or definitely none)."""
        await self._write_settled()
        self._record = self._record.model_copy(update={"unsettled_since": None})

    # Where a durable log writes; the in-memory base keeps only :attr:`record`.
    async def _write_send(self, fingerprint: str) -> None:
        pass

    async def _write_unanswered(self, answered: bool) -> None:
        pass

    async def _write_settled(self) -> None:
        pass


class OrderState(StrEnum):
    """The provider's view of an order."""

    # Accepted but not yet issued: poll ``get_order`` (or wait for a webhook) until it settles.
    PENDING = "pending"
    # Issued; the redemption details are available (or the provider emailed them itself).
    COMPLETED = "completed"
    # The provider gave up on it; nothing was issued.
    FAILED = "failed"


class Redemption(BaseModel):
    """How the recipient redeems the card. Every field is a secret for the recipient alone."""

    model_config = ConfigDict(frozen=True)

    url: SecretStr | None = None
    code: SecretStr | None = None
    pin: SecretStr | None = None

    @model_validator(mode="after")
    def _something_to_redeem(self) -> Redemption:
        if self.url is None and self.code is None:
            raise ValueError("a redemption needs a link or a code")
        return self


class IssuedCard(BaseModel):
    """One card of a completed order, as the provider lists it."""

    model_config = ConfigDict(frozen=True)

    # The provider's id for the card (Runa's item id), where it has one: it orders the cards
    # the same way on every reading.
    card_id: str = ""
    # The address the provider emailed it to (lower case), for providers that email cards.
    email: str | None = None
    face_value: Decimal | None = None
    # How the recipient redeems it, for providers that hand the card to the bot.
    redemption: Redemption | None = None


class OrderResult(BaseModel):
    """The provider's answer about an order."""

    model_config = ConfigDict(frozen=True)

    provider_order_id: str
    state: OrderState
    # Set when COMPLETED, unless the provider delivered the card to the recipient itself.
    redemption: Redemption | None = None
    delivered_by_provider: bool = False
    # What the company paid (price after discount, plus fees), in the charged currency.
    charged: Money | None = None
    failure_reason: str | None = None
    # The cards a completed order lists, where the provider lists them. A shared order's
    # recipients find theirs here; one with no card here got none.
    cards: tuple[IssuedCard, ...] = ()


class WebhookNotice(BaseModel):
    """An authentic webhook saying an order changed: fetch it (or stop waiting) now."""

    model_config = ConfigDict(frozen=True)

    provider_order_id: str


class CallObserver(Protocol):
    """Told of every call an adapter makes to its provider (the bot's metrics plug in here):
    what kind of call it was and how it went, never what it carried."""

    def provider_call(self, provider: str, operation: str, outcome: str, seconds: float) -> None:
        """``operation``: the :class:`Provider` method the call was made for;
        ``outcome``: ``ok`` or how it failed (``rate_limited``, ``timeout``…)."""


class CallPacer(Protocol):
    """Keeps a provider's rate limit for every process of the bot together (the bot plugs its
    database in here): told before each call to the provider, and of each 429 it answers."""

    async def before_call(self, provider: str, requests_per_minute: int | None) -> None:
        """Return when the next call to ``provider`` may leave: at most ``requests_per_minute``
        of them go out, from all processes (``None``: no limit is documented, so only a 429's
        wait holds calls back)."""

    async def before_order(self, provider: str, orders_per_minute: int) -> None:
        """Return when the next order may be placed with ``provider``: at most
        ``orders_per_minute`` of them, from all processes (a limit on orders alone: the
        calls that read orders or the catalog do not count against it)."""

    async def rate_limited(self, provider: str, retry_after: float) -> None:
        """``provider`` answered 429: no process calls it again for ``retry_after`` seconds."""


# Polling a pending order. No provider documents how long its orders take; Runa's webhooks
# (retried 5 s after a failed delivery, then minutes apart) and Giftronaut's immediately
# complete sandbox orders say most complete within seconds. So the first look is soon after
# the order, then each wait is half the order's age (it looks at 0.25 s, 0.5, 0.75, 1.1, 1.7,
# 2.5, 3.8, 5.7…), so an order that completes at once is delivered within a fraction of a
# second of completing, while one that waits on something slow costs few calls (about a
# dozen in its first minute, then one every half minute).
FIRST_POLL = 0.25
POLL_GROWTH = 1.5
LONGEST_POLL = 30.0


class Provider(ABC):
    """A gift-card provider. Implementations must be safe to call concurrently."""

    name: ClassVar[str]
    # A pending order is looked at again (``get_order``) soon after it was placed, then less
    # and less often (see :meth:`next_poll`): ``first_poll`` seconds after placing it, and
    # never more than ``poll_interval`` seconds apart.
    first_poll: float = FIRST_POLL
    poll_interval: float = LONGEST_POLL
    # Whether ``OrderRequest.recipient.email`` must be set (the provider emails the card).
    needs_recipient_email: ClassVar[bool] = False
    # Whether :meth:`resend` can email an issued card again (to a corrected address).
    can_resend: ClassVar[bool] = False
    # Whether an order can carry ``send_at``, and how long before it :meth:`cancel_order`
    # still works. Other providers' scheduled rewards are held by the bot instead.
    schedules_natively: ClassVar[bool] = False
    cancel_cutoff: ClassVar[timedelta] = timedelta(0)
    # How many recipients :meth:`place_shared_order` takes in one order; 1: it is not offered.
    max_recipients_per_order: ClassVar[int] = 1
    # How long after its first send a key may still be replayed safely (the provider's
    # idempotency window, with a margin); ``None``: no documented limit. An order whose
    # outcome is still unknown past it needs a person, never a replay that could buy again.
    safe_replay_age: ClassVar[timedelta | None] = None
    # The provider's documented rate limits, kept by all the bot's processes together (see
    # :class:`CallPacer`): on every call, and on placing orders alone; ``None``: none is
    # documented.
    requests_per_minute: int | None = None
    orders_per_minute: int | None = None

    @classmethod
    def from_env(cls, http: httpx.AsyncClient) -> Self:
        """Build the adapter from its own environment settings (raises ProviderConfigError)."""
        raise ProviderConfigError(f"{cls.name} cannot be configured from the environment")

    def credentials(self) -> tuple[SecretStr, ...]:
        """The secrets this adapter authenticates with, so the bot can mask them in its logs
        from the start."""
        return ()

    def next_poll(self, pending_for: float) -> float:
        """Seconds until a pending order placed ``pending_for`` seconds ago is looked at again."""
        grown = pending_for * (POLL_GROWTH - 1)
        return min(self.poll_interval, max(self.first_poll, grown))

    @abstractmethod
    async def list_products(self) -> list[Product]:
        """The provider's catalog."""

    @abstractmethod
    async def place_order(self, order: OrderRequest, sends: SendLog | None = None) -> OrderResult:
        """Place (or, for a key sent before, replay) an order, recording each send in ``sends``
        first (a fresh in-memory log if ``None``: a key never sent before)."""

    async def place_shared_order(
        self, order: SharedOrder, sends: SendLog | None = None
    ) -> OrderResult:
        """Place (or replay) one order for every line; only where ``max_recipients_per_order``
        is above 1. A completed result lists the ``cards`` it issued."""
        raise OrderDeclined(f"{self.name} takes one recipient per order.")

    @abstractmethod
    async def get_order(self, provider_order_id: str) -> OrderResult:
        """The current state of an order placed earlier."""

    async def cancel_order(self, provider_order_id: str) -> None:
        """Cancel a scheduled order before ``cancel_cutoff``; only where ``schedules_natively``."""
        raise OrderDeclined(f"{self.name} cannot cancel an order.")

    async def resend(
        self, provider_order_id: str, recipient_email: str | None, new_email: str | None = None
    ) -> None:
        """Email the card of ``recipient_email`` in an issued order again, to ``new_email`` if
        given; only where ``can_resend``."""
        raise OrderDeclined(f"{self.name} cannot resend a card.")

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookNotice | None:
        """Verify and read a webhook delivery; ``None`` if it is not about an order.

        Raises :class:`~providers.errors.WebhookRejected` if it is not authentic.
        """
        raise WebhookRejected(f"{self.name} does not accept webhooks")

    def observe_calls(self, observer: CallObserver) -> None:  # noqa: B027 - optional hook
        """Report every call to the provider to ``observer``; adapters that make no calls (the
        sandbox) have nothing to report."""

    def pace_calls(self, pacer: CallPacer) -> None:  # noqa: B027 - optional hook
        """Wait for ``pacer`` before every call to the provider, and tell it of every 429;
        adapters that make no calls (the sandbox) have nothing to pace."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Release connections; the default holds none."""
