"""The audit trail (every change of a request, as events) and where Slack shows a request."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot.domain import Status
from bot.store.base import StoreBase
from bot.store.sql import Connection, now_timestamp

# The actor of what rewardbot does on its own (jobs, expiries), in events and decisions.
SYSTEM_ACTOR = "rewardbot"


class Event(BaseModel):
    """One line of the audit trail."""

    model_config = ConfigDict(frozen=True)

    request_id: int
    kind: str
    from_status: Status | None
    to_status: Status | None
    actor: str
    detail: dict[str, Any]
    at: datetime


class ApprovalCard(BaseModel):
    """Where an approver's Approve / Reject card was posted."""

    model_config = ConfigDict(frozen=True)

    # The approver whose DM holds the card, or the approvals channel's id.
    approver_id: str
    channel: str
    ts: str


async def insert_event(
    db: Connection,
    request_id: int,
    kind: str,
    from_status: Status | None,
    to_status: Status | None,
    actor: str,
    detail: dict[str, Any],
    at: str,
) -> None:
    """An event, in the caller's transaction (so it is written with what it records)."""
    await db.run(
        "INSERT INTO events (request_id, kind, from_status, to_status, actor, detail, at) "
        "VALUES (:request_id, :kind, :from_status, :to_status, :actor, :detail, :at)",
        request_id=request_id,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        detail=json.dumps(detail),
        at=at,
    )


class AuditLog(StoreBase):
    """The events of a request, and the Slack messages that show it."""

    async def record_event(
        self, request_id: int, kind: str, actor: str, detail: Mapping[str, Any]
    ) -> None:
        """An audit event that is not a status change (a reminder sent, for example)."""
        async with self._transaction() as db:
            await insert_event(
                db, request_id, kind, None, None, actor, dict(detail), now_timestamp()
            )

    async def events(self, request_id: int) -> list[Event]:
        rows = await self._fetch(
            "SELECT * FROM events WHERE request_id = :id ORDER BY id", id=request_id
        )
        return [
            Event(
                request_id=r["request_id"],
                kind=r["kind"],
                from_status=r["from_status"],
                to_status=r["to_status"],
                actor=r["actor"],
                detail=json.loads(r["detail"]),
                at=datetime.fromisoformat(r["at"]),
            )
            for r in rows
        ]

    async def add_approval_card(
        self, request_id: int, approver_id: str, channel: str, ts: str
    ) -> None:
        async with self._transaction() as db:
            await db.run(
                "INSERT INTO approval_cards (request_id, approver_id, channel, ts) "
                "VALUES (:request_id, :approver_id, :channel, :ts) "
                "ON CONFLICT (request_id, approver_id) DO UPDATE SET "
                "channel = excluded.channel, ts = excluded.ts",
                request_id=request_id,
                approver_id=approver_id,
                channel=channel,
                ts=ts,
            )

    async def approval_cards(self, request_id: int) -> list[ApprovalCard]:
        rows = await self._fetch(
            "SELECT approver_id, channel, ts FROM approval_cards WHERE request_id = :id "
            "ORDER BY approver_id",
            id=request_id,
        )
        return [ApprovalCard.model_validate(dict(r)) for r in rows]

    async def set_summary_message(
        self, request_id: int, channel: str, ts: str, permalink: str | None
    ) -> None:
        async with self._transaction() as db:
            await db.run(
                "UPDATE reward_requests SET summary_channel = :channel, summary_ts = :ts, "
                "summary_permalink = :permalink WHERE id = :id",
                channel=channel,
                ts=ts,
                permalink=permalink,
                id=request_id,
            )
