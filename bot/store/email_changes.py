"""Sending a delivered card again: to where it goes now, or to a corrected address once its
recipient confirmed it (an address change)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot.errors import NotAllowed, RequestNotFound
from bot.store.audit import SYSTEM_ACTOR, insert_event
from bot.store.base import StoreBase
from bot.store.jobs import JobKind, insert_job
from bot.store.sql import Connection, Row, now_timestamp, timestamp


class EmailChangeOutcome(StrEnum):
    """How an address change ended; ``None`` while it waits for its recipient."""

    # By the recipient in Slack, or by rewardbot for their own Slack email: the card goes there.
    CONFIRMED = "confirmed"
    # The recipient said it is not their address.
    DECLINED = "declined"
    # Nobody confirmed it in time.
    EXPIRED = "expired"
    # The recipient could not be asked in Slack.
    WITHDRAWN = "withdrawn"


class EmailChange(BaseModel):
    """An approver's correction of the address a delivered card is emailed to, which takes
    effect only once confirmed (:class:`EmailChangeOutcome`)."""

    model_config = ConfigDict(frozen=True)

    id: int
    request_id: int
    email: str
    requested_by: str
    expires_at: datetime
    outcome: EmailChangeOutcome | None
    decided_by: str | None


def mask_email(email: str) -> str:
    """``jane@home.example`` → ``j***@home.example``: enough for people who know the address to
    recognise it, so the audit trail and shared messages show addresses this way."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


class EmailChanges(StoreBase):
    """Resends of a delivered card, and the address changes that redirect it."""

    async def queue_resend(self, request_id: int, actor: str, cooldown: timedelta) -> bool:
        """Queue a ``resend`` job of the card to where it goes now, for ``actor``, unless they
        asked for one within ``cooldown``; the check and the queueing are one transaction, so
        a double click resends once."""
        now = now_timestamp()
        async with self._transaction() as db:
            # Two processes taking the two clicks of a double click must not both queue one.
            await db.lock_request(request_id)
            recent = await db.rows(
                "SELECT 1 FROM events WHERE request_id = :id AND actor = :actor "
                "AND kind = 'resend_requested' AND at > :since",
                id=request_id,
                actor=actor,
                since=now_timestamp(-cooldown.total_seconds()),
            )
            if recent:
                return False
            detail = {"to": "recipient"}
            await insert_event(db, request_id, "resend_requested", None, None, actor, detail, now)
            await insert_job(db, JobKind.RESEND, request_id, {"actor": actor}, now)
        self._jobs_queued()
        return True

    async def propose_email_change(
        self, request_id: int, email: str, actor: str, expires_at: datetime
    ) -> EmailChange:
        """``actor`` asks for the card to be emailed to ``email`` from now on: stored waiting
        (until ``expires_at``), with an ``email_change_requested`` event and the ``resend``
        job that asks the recipient (``ask``), in one transaction. One change waits at a time:
        raises :class:`NotAllowed` while another does; one whose time ran out unanswered is
        ended first, as ``expired``."""
        now = now_timestamp()
        async with self._transaction() as db:
            await db.lock_request(request_id)
            await _end_waiting(
                db,
                EmailChangeOutcome.EXPIRED,
                SYSTEM_ACTOR,
                now,
                "request_id = :id AND expires_at <= :now",
                id=request_id,
            )
            waiting = await db.rows(
                "SELECT 1 FROM email_changes WHERE request_id = :id AND outcome IS NULL",
                id=request_id,
            )
            if waiting:
                raise NotAllowed(
                    "Another address for this card is waiting for its recipient's "
                    "confirmation; it must be confirmed, refused or expire first."
                )
            inserted = await db.rows(
                "INSERT INTO email_changes (request_id, email, requested_by, requested_at, "
                "expires_at) VALUES (:id, :email, :actor, :now, :expires) RETURNING id",
                id=request_id,
                email=email,
                actor=actor,
                now=now,
                expires=timestamp(expires_at),
            )
            change_id = int(inserted[0]["id"])
            detail = {
                "to": f"email {mask_email(email)}",
                "change": change_id,
                "expires_at": timestamp(expires_at),
            }
            await insert_event(
                db, request_id, "email_change_requested", None, None, actor, detail, now
            )
            payload = {"actor": actor, "ask": change_id}
            await insert_job(db, JobKind.RESEND, request_id, payload, now)
        self._jobs_queued()
        return await self.email_change(change_id)

    async def email_change(self, change_id: int) -> EmailChange:
        rows = await self._fetch("SELECT * FROM email_changes WHERE id = :id", id=change_id)
        if not rows:
            raise RequestNotFound(f"There is no address change #{change_id}.")
        row = rows[0]
        return EmailChange(
            id=row["id"],
            request_id=row["request_id"],
            email=row["email"],
            requested_by=row["requested_by"],
            expires_at=datetime.fromisoformat(row["expires_at"]),
            outcome=row["outcome"],
            decided_by=row["decided_by"],
        )

    async def decide_email_change(
        self,
        change_id: int,
        outcome: EmailChangeOutcome,
        actor: str,
        detail: Mapping[str, Any] | None = None,
    ) -> bool:
        """End a waiting change once, with its ``email_change_<outcome>`` event: ``expired``
        only once its time is up, any other outcome only before. A confirmation queues, in
        the same transaction, the ``resend`` job that has the provider email the card there
        (``change``), on behalf of the approver who asked. False if the change had ended, or
        its time had run out (or not) meanwhile."""
        now = now_timestamp()
        async with self._transaction() as db:
            # The request's row before the change's, as every path that changes both takes
            # them (proposing a change locks the request, then ends the one waiting): in the
            # other order the two could deadlock on PostgreSQL.
            of = await db.rows("SELECT request_id FROM email_changes WHERE id = :id", id=change_id)
            if not of:
                return False
            await db.lock_request(int(of[0]["request_id"]))
            ended = await _end_waiting(
                db,
                outcome,
                actor,
                now,
                "id = :id AND (expires_at <= :now) = :expired",
                detail or {},
                id=change_id,
                expired=outcome is EmailChangeOutcome.EXPIRED,
            )
            if not ended:
                return False
            if outcome is EmailChangeOutcome.CONFIRMED:
                payload = {"actor": ended[0]["requested_by"], "change": change_id}
                await insert_job(db, JobKind.RESEND, ended[0]["request_id"], payload, now)
        self._jobs_queued()
        return True

    async def apply_email_change(
        self, change_id: int, actor: str, detail: Mapping[str, Any]
    ) -> None:
        """The provider now emails the card to a confirmed change's address: it replaces the
        request's, so later resends find the card under it, with a ``resent`` event. Nothing
        else ever replaces a delivered card's address."""
        now = now_timestamp()
        async with self._transaction() as db:
            updated = await db.rows(
                "UPDATE reward_requests SET recipient_email = c.email, updated_at = :now "
                "FROM email_changes c WHERE c.id = :id AND c.request_id = reward_requests.id "
                "AND c.outcome = :confirmed RETURNING reward_requests.id",
                now=now,
                id=change_id,
                confirmed=EmailChangeOutcome.CONFIRMED,
            )
            if not updated:
                raise NotAllowed(f"Address change #{change_id} was not confirmed.")
            request_id = int(updated[0]["id"])
            await insert_event(db, request_id, "resent", None, None, actor, dict(detail), now)


async def _end_waiting(
    db: Connection,
    outcome: EmailChangeOutcome,
    actor: str,
    now: str,
    which: str,
    detail: Mapping[str, Any] | None = None,
    **parameters: object,
) -> Sequence[Row]:
    """End the waiting changes that ``which`` (a condition) selects as ``outcome``, by
    ``actor``, each with its ``email_change_<outcome>`` event; the changes it ended (``id``,
    ``request_id``, ``email``, ``requested_by``). The guard ``outcome IS NULL`` makes each
    end once, whoever races to end it."""
    ended = await db.rows(
        "UPDATE email_changes SET outcome = :outcome, decided_at = :now, "  # noqa: S608
        f"decided_by = :actor WHERE {which} AND outcome IS NULL "
        "RETURNING id, request_id, email, requested_by",
        outcome=outcome,
        now=now,
        actor=actor,
        **parameters,
    )
    for row in ended:
        event = {"to": f"email {mask_email(row['email'])}", "change": row["id"], **(detail or {})}
        kind = f"email_change_{outcome}"
        await insert_event(db, row["request_id"], kind, None, None, actor, event, now)
    return ended
