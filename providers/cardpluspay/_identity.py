"""What tells one CardPlusPay order from another (never its codes), and the order-list scan
that looks for an order whose answer was lost."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

from providers.base import OrderRequest
from providers.cardpluspay._json import _Order

# A naive ``created_at`` could be in any time zone: count it as anywhere within this much.
_NAIVE_TIME_SLACK = timedelta(hours=14)


def _time_range(text: str | None) -> tuple[datetime, datetime] | None:
    """The UTC instants ``created_at`` may mean (a naive time could be in any zone)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
        return moment - _NAIVE_TIME_SLACK, moment + _NAIVE_TIME_SLACK
    moment = moment.astimezone(UTC)
    return moment, moment


@dataclass(frozen=True)
class _Identity:
    """What tells one CardPlusPay order from another: never its codes."""

    order_id: int
    label: str
    created: tuple[datetime, datetime] | None = None
    email: str | None = None
    item_code: str | None = None
    face: Decimal | None = None

    @classmethod
    def of(cls, order: _Order, fallback: _Identity | None = None) -> _Identity:
        items = {c.item_code for c in order.codes if c.item_code}
        faces = [c.denomination for c in order.codes if c.denomination is not None]
        face = order.total_denomination
        if face is None and faces and len(faces) == len(order.codes):
            face = sum(faces, Decimal(0))
        found = cls(
            order_id=order.order_id,
            label=order.label,
            created=_time_range(order.created_at),
            email=order.email.strip().casefold() if order.email else None,
            item_code=order.item_code
            or order.item_id
            or (items.pop() if len(items) == 1 else None),
            face=face,
        )
        if fallback is None:
            return found
        return cls(
            order_id=found.order_id,
            label=found.label if order.order_no else fallback.label,
            created=found.created or fallback.created,
            email=found.email or fallback.email,
            item_code=found.item_code or fallback.item_code,
            face=found.face if found.face is not None else fallback.face,
        )

    @property
    def complete(self) -> bool:
        fields = (self.created, self.email, self.item_code, self.face)
        return all(f is not None for f in fields)

    def compare(self, order: OrderRequest) -> Literal["match", "other", "unresolved"]:
        email = (order.recipient.email or "").strip().casefold()
        if self.email is not None and self.email != email:
            return "other"
        if self.item_code is not None and self.item_code != order.product_id:
            return "other"
        if self.face is not None and self.face != order.face_value.amount:
            return "other"
        if self.email is not None and self.item_code is not None:
            return "match"
        return "unresolved"


@dataclass
class _Scan:
    """Orders created since a moment that may be the one we are looking for."""

    order: OrderRequest
    since: datetime
    # Orders known to be other rewards': never taken for this one.
    attributed: frozenset[str]
    complete: bool = False
    matches: list[_Identity] = field(default_factory=list)
    unresolved: list[_Identity] = field(default_factory=list)
    # When the order read last was created: the list must come newest first.
    previous: tuple[datetime, datetime] | None = field(default=None, init=False)

    def add(self, identity: _Identity) -> bool:
        """Sort out the next order of the list; whether to read on (not past ``since``, where
        the scan is ``complete``, and the list still newest first)."""
        created = identity.created
        if created is not None:
            if self.previous is not None and created[0] > self.previous[1]:
                return False  # not newest first: cannot tell where the window ends
            self.previous = created
            if created[1] < self.since:
                self.complete = True
                return False
        if str(identity.order_id) in self.attributed:
            return True
        match identity.compare(self.order):
            case "match":
                self.matches.append(identity)
            case "unresolved":
                self.unresolved.append(identity)
            case "other":
                pass
        return True

    def describe(self) -> str:
        """What was found, for a person: order numbers only, never codes."""

        def shown(found: list[_Identity]) -> str:
            labels = [i.label for i in found]
            return ", ".join(labels[:5]) + (" and more" if len(labels) > 5 else "")

        parts = []
        if self.matches:
            parts.append(f"CardPlusPay has order {shown(self.matches)} for this card and recipient")
        if self.unresolved:
            parts.append(
                f"CardPlusPay has orders it does not show enough of to rule out: "
                f"{shown(self.unresolved)}"
            )
        if not self.complete:
            parts.append("CardPlusPay's recent orders could not all be read")
        return "; ".join(parts)
