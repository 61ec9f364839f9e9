"""What prevents a repeat order or delivery DM: every send of an order's idempotency key and
the start of every delivery are recorded, fenced by the job's claim, before they happen."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot.store.audit import SYSTEM_ACTOR, insert_event
from bot.store.base import StoreBase
from bot.store.jobs import Job, require_current_claim
from bot.store.sql import Connection, Row, now_timestamp, optional_datetime, timestamp
from providers.base import SendRecord

_SENDS_OF_KEY = "SELECT * FROM order_sends WHERE order_key = :key"


class DeliveryStart(BaseModel):
    """The start of a request's delivery DM, recorded before the DM is sent."""

    model_config = ConfigDict(frozen=True)

    started_at: datetime
    # The claim that started it, if not this run: its DM may have been sent, or be in flight.
    other_claim: str | None = None


class OrderSends(StoreBase):
    """Sends of provider orders, the orders they placed, and the start of delivery DMs."""

    async def start_delivery(self, request_id: int, fence: Job) -> DeliveryStart:
        """Record, before the delivery DM, that this claim starts it (with a
        ``delivery_started`` event); if a delivery was started already, say by whom."""
        now = now_timestamp()
        async with self._transaction() as db:
            await require_current_claim(db, fence)
            # A resend and the fulfilment (two jobs, two claims) may start it at once.
            await db.lock_request(request_id)
            rows = await db.rows(
                "SELECT delivery_started_at, delivery_claim FROM reward_requests WHERE id = :id",
                id=request_id,
            )
            started, claim = rows[0]["delivery_started_at"], rows[0]["delivery_claim"]
            if started is not None:
                other = None if claim == fence.lease else (claim or "an earlier version")
                return DeliveryStart(started_at=datetime.fromisoformat(started), other_claim=other)
            await db.run(
                "UPDATE reward_requests SET delivery_started_at = :now, delivery_claim = :lease "
                "WHERE id = :id",
                now=now,
                lease=fence.lease,
                id=request_id,
            )
            await insert_event(
                db, request_id, "delivery_started", None, None, SYSTEM_ACTOR, {}, now
            )
        return DeliveryStart(started_at=datetime.fromisoformat(now))

    async def take_over_delivery(self, request_id: int, fence: Job, other_claim: str) -> bool:
        """This claim carries on a delivery another one started (whose DM was not found);
        False if someone else took it over first."""
        async with self._transaction() as db:
            await require_current_claim(db, fence)
            taken = await db.run(
                "UPDATE reward_requests SET delivery_claim = :lease WHERE id = :id "
                "AND (delivery_claim = :other OR (delivery_claim IS NULL AND :earlier))",
                lease=fence.lease,
                id=request_id,
                other=other_claim,
                earlier=other_claim == "an earlier version",
            )
            return taken == 1

    async def send_record(self, order_key: str) -> SendRecord:
        """What is known about the sends of ``order_key`` (empty if never sent)."""
        return _send_record(await self._fetch(_SENDS_OF_KEY, key=order_key))

    async def record_send(
        self, fence: Job, provider: str, order_key: str, fingerprint: str
    ) -> SendRecord:
        """Written before each send of an order, fenced by the claim: the key is (again) sent
        now and its outcome is unknown until :meth:`settle_sends`. Returns the record as it
        was before this send."""
        now = now_timestamp()
        async with self._transaction() as db:
            await require_current_claim(db, fence)
            before = _send_record(await db.rows(_SENDS_OF_KEY, key=order_key))
            await db.run(
                """INSERT INTO order_sends (order_key, provider, fingerprint, first_sent_at,
                       last_sent_at, sends, unsettled_since, last_answered)
                   VALUES (:key, :provider, :fingerprint, :now, :now, 1, :now, 0)
                   ON CONFLICT (order_key) DO UPDATE SET
                       fingerprint = COALESCE(order_sends.fingerprint, excluded.fingerprint),
                       last_sent_at = excluded.last_sent_at, sends = order_sends.sends + 1,
                       unsettled_since = COALESCE(order_sends.unsettled_since,
                                                  excluded.unsettled_since),
                       last_answered = 0""",
                key=order_key,
                provider=provider,
                fingerprint=fingerprint,
                now=now,
            )
        return before

    async def record_unanswered(self, order_key: str, *, answered: bool) -> None:
        """The last send's outcome is unknown (``answered``: the provider did answer, with an
        error that does not say whether it placed the order)."""
        async with self._transaction() as db:
            await db.run(
                "UPDATE order_sends SET last_answered = :answered WHERE order_key = :key",
                answered=int(answered),
                key=order_key,
            )

    async def settle_sends(self, order_key: str) -> None:
        """The provider said what became of ``order_key``'s sends (an order, or none)."""
        async with self._transaction() as db:
            await _settle(db, order_key)

    async def attributed_orders(self, provider: str, since: datetime) -> frozenset[str]:
        """The provider's order ids already known to be some reward's, for requests changed
        since ``since``: a lookup for an order of unknown outcome must never take one of them."""
        rows = await self._fetch(
            "SELECT DISTINCT provider_order_id FROM reward_requests WHERE provider = :provider "
            "AND provider_order_id IS NOT NULL AND updated_at >= :since",
            provider=provider,
            since=timestamp(since),
        )
        return frozenset(str(r["provider_order_id"]) for r in rows)

    async def set_provider_order(
        self, request_ids: Sequence[int], provider_order_id: str, order_key: str, fence: Job
    ) -> None:
        """The provider's id for the order of these requests (all of one order), with an
        ``order_placed`` event each, in one transaction that also settles the key's sends."""
        now = now_timestamp()
        async with self._transaction() as db:
            await require_current_claim(db, fence)
            for request_id in request_ids:
                await db.run(
                    "UPDATE reward_requests SET provider_order_id = :order_id, updated_at = :now "
                    "WHERE id = :id",
                    order_id=provider_order_id,
                    now=now,
                    id=request_id,
                )
                detail: dict[str, Any] = {"provider_order_id": provider_order_id}
                if len(request_ids) > 1:
                    detail["cards_in_order"] = len(request_ids)
                await insert_event(
                    db, request_id, "order_placed", None, None, SYSTEM_ACTOR, detail, now
                )
            await _settle(db, order_key)


async def _settle(db: Connection, order_key: str) -> None:
    await db.run(
        "UPDATE order_sends SET unsettled_since = NULL WHERE order_key = :key", key=order_key
    )


def _send_record(rows: Sequence[Row]) -> SendRecord:
    """The record in what :data:`_SENDS_OF_KEY` read (empty if the key was never sent)."""
    if not rows:
        return SendRecord()
    row = rows[0]
    return SendRecord(
        fingerprint=row["fingerprint"],
        first_sent_at=optional_datetime(row["first_sent_at"]),
        last_sent_at=optional_datetime(row["last_sent_at"]),
        sends=row["sends"],
        unsettled_since=optional_datetime(row["unsettled_since"]),
        last_answered=bool(row["last_answered"]),
    )
