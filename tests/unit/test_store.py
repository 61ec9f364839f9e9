import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.domain import Money, Status
from bot.errors import NotAllowed, RequestNotFound
from bot.store import Change, EmailChangeOutcome, JobKind, Store
from bot.store.jobs import insert_job
from bot.store.schema import MIGRATIONS
from bot.store.sql import now_timestamp
from tests.databases import terminate_sessions
from tests.support import sql_execute
from tests.unit.support import new_request


async def test_created_request_round_trips_exactly(database: str) -> None:
    store = await Store.open(database)
    created, is_new = await store.create_request(new_request(), "V1")
    assert is_new
    assert created.status is Status.PENDING_APPROVAL
    assert created.face_value == Money(amount=Decimal("25.00"), currency="GBP")
    assert (await store.get(created.id)) == created
    events = await store.events(created.id)
    assert [(e.kind, e.to_status, e.actor) for e in events] == [
        ("created", Status.PENDING_APPROVAL, "UREQ")
    ]
    await store.close()


async def test_only_one_of_many_concurrent_transitions_wins(database: str) -> None:
    store = await Store.open(database)
    request, _ = await store.create_request(new_request(), "V1")
    results = await asyncio.gather(
        *(
            store.transition(
                request.id, Status.PENDING_APPROVAL, Status.APPROVED, f"U{i}", decided_by=f"U{i}"
            )
            for i in range(20)
        )
    )
    assert results.count(True) == 1
    winner = f"U{results.index(True)}"
    stored = await store.get(request.id)
    assert stored.status is Status.APPROVED
    assert stored.decided_by == winner
    transitions = [e for e in await store.events(request.id) if e.kind == "transition"]
    assert [(e.from_status, e.to_status, e.actor) for e in transitions] == [
        (Status.PENDING_APPROVAL, Status.APPROVED, winner)
    ]
    await store.close()


async def test_disallowed_transition_is_a_programming_error(database: str) -> None:
    store = await Store.open(database)
    request, _ = await store.create_request(new_request(), "V1")
    with pytest.raises(ValueError, match="not an allowed transition"):
        await store.transition(request.id, Status.PENDING_APPROVAL, Status.FULFILLED, "x")
    assert (await store.get(request.id)).status is Status.PENDING_APPROVAL
    await store.close()


async def test_state_survives_a_reopen_and_migrations_run_once(database: str) -> None:
    store = await Store.open(database)
    request, _ = await store.create_request(new_request(), "V1")
    await store.transition(
        request.id,
        Status.PENDING_APPROVAL,
        Status.REJECTED,
        "UAPP",
        decided_by="UAPP",
        decision_reason="budget",
    )
    await store.close()
    reopened = await Store.open(database)
    stored = await reopened.get(request.id)
    assert (stored.status, stored.decision_reason) == (Status.REJECTED, "budget")
    with pytest.raises(RequestNotFound):
        await reopened.get(request.id + 1)
    await reopened.close()


async def test_the_same_submission_is_stored_once(database: str) -> None:
    store = await Store.open(database)
    first, first_is_new = await store.create_request(new_request(), "V1")
    again, again_is_new = await store.create_request(new_request(), "V1")
    other, other_is_new = await store.create_request(new_request(), "V2")
    assert (first_is_new, again_is_new, other_is_new) == (True, False, True)
    assert again == first
    assert other.id != first.id
    await store.close()


async def test_a_database_from_a_newer_rewardbot_is_refused(database: str) -> None:
    store = await Store.open(database)
    await store.close()
    await sql_execute(database, "UPDATE alembic_version SET version_num = '9999_from_the_future'")
    with pytest.raises(RuntimeError, match="newer than this rewardbot"):
        await Store.open(database)


async def test_a_transaction_cancelled_at_any_point_is_all_or_nothing(database: str) -> None:
    store = await Store.open(database)
    request, _ = await store.create_request(new_request(), "V1")

    def approve() -> Awaitable[bool]:
        return store.transition(
            request.id,
            Status.PENDING_APPROVAL,
            Status.APPROVED,
            "UAPP",
            then=[JobKind.FULFIL],
            decided_by="UAPP",
        )

    async def state() -> tuple[Status, int, int]:
        events = [e for e in await store.events(request.id) if e.kind == "transition"]
        return (await store.get(request.id)).status, len(events), await store.open_job_count()

    nothing, everything = (Status.PENDING_APPROVAL, 0, 1), (Status.APPROVED, 1, 3)
    for steps in range(60):
        task = asyncio.create_task(approve())
        for _ in range(steps):  # let it get a little further each time before cancelling
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        # The request, its audit event and its jobs (notify + fulfil) change together.
        assert await state() in (nothing, everything)
        if await state() == everything:
            break
    else:
        assert await approve()  # never got through while cancelled: the store still works
    assert await state() == everything
    await store.close()


async def test_a_write_cancelled_before_it_began_leaves_the_store_usable(database: str) -> None:
    store = await Store.open(database)
    request, _ = await store.create_request(new_request(), "V1")
    for steps in range(12):
        task = asyncio.create_task(store.set_summary_message(request.id, "C1", f"1.{steps}", None))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        # A BEGIN whose await was cancelled still runs on aiosqlite's thread: the rollback
        # must follow it, or this next transaction fails to start.
        await store.add_approval_card(request.id, "UAPP", "D1", f"2.{steps}")
    await store.close()


async def test_a_job_claim_cancelled_at_any_point_leaves_the_store_usable(database: str) -> None:
    """A graceful stop cancels the claim loop wherever it is, even while it reads the claimed
    row; the UPDATE ... RETURNING must not stay open and block every later commit."""
    store = await Store.open(database)
    request, _ = await store.create_request(new_request(), "V1")  # queues a notify job
    for steps in range(16):
        task = asyncio.create_task(store.claim_job("runner", 30, JobKind.NOTIFY))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.release_jobs("runner")
        await store.add_approval_card(request.id, "UAPP", "D1", f"2.{steps}")
    assert await store.claim_job("runner", 30, JobKind.NOTIFY) is not None
    await store.close()


async def test_transition_all_changes_every_request_or_none(database: str) -> None:
    store = await Store.open(database)
    batch, _ = await store.create_requests([new_request(), new_request(), new_request()], "V1")
    first, second, third = (r.id for r in batch)
    assert [r.batch_id for r in batch] == [first] * 3
    # Someone else cancels the second one first: the batch decision must not half-apply.
    assert await store.transition(second, Status.PENDING_APPROVAL, Status.CANCELLED, "UREQ")
    reject_all = [
        Change(i, Status.PENDING_APPROVAL, Status.REJECTED) for i in (first, second, third)
    ]
    assert not await store.transition_all(reject_all, "UAPP")
    assert [(await store.get(i)).status for i in (first, third)] == [Status.PENDING_APPROVAL] * 2
    assert [e.kind for e in await store.events(first)] == ["created"]
    await store.close()


async def test_only_a_confirmed_address_change_replaces_a_cards_address(database: str) -> None:
    store = await Store.open(database)
    request, _ = await store.create_request(new_request(), "V1")
    soon = datetime.now(UTC) + timedelta(hours=1)
    change = await store.propose_email_change(request.id, "me@elsewhere.example", "UAPP", soon)
    # One change waits at a time, and a waiting or refused one cannot move the card.
    with pytest.raises(NotAllowed, match="waiting for its recipient"):
        await store.propose_email_change(request.id, "other@elsewhere.example", "UAPP", soon)
    with pytest.raises(NotAllowed, match="not confirmed"):
        await store.apply_email_change(change.id, "UAPP", {})
    assert await store.decide_email_change(change.id, EmailChangeOutcome.DECLINED, "UREC")
    assert not await store.decide_email_change(change.id, EmailChangeOutcome.CONFIRMED, "UREC")
    with pytest.raises(NotAllowed, match="not confirmed"):
        await store.apply_email_change(change.id, "UAPP", {})
    # Not confirmed in time: it can only expire, and it does when the next one is proposed.
    late = await store.propose_email_change(
        request.id, "me@elsewhere.example", "UAPP", datetime.now(UTC) - timedelta(seconds=1)
    )
    assert not await store.decide_email_change(late.id, EmailChangeOutcome.CONFIRMED, "UREC")
    taken = await store.propose_email_change(request.id, "me@elsewhere.example", "UAPP", soon)
    assert (await store.email_change(late.id)).outcome is EmailChangeOutcome.EXPIRED
    # Confirmed once: the resend job is queued on behalf of the approver who asked, and only
    # then may the address be replaced.
    assert await store.decide_email_change(taken.id, EmailChangeOutcome.CONFIRMED, "UREC")
    assert not await store.decide_email_change(taken.id, EmailChangeOutcome.CONFIRMED, "UREC")
    payloads = []
    while (job := await store.claim_job("runner", 30, JobKind.RESEND)) is not None:
        payloads.append(job.payload)
        await store.finish_job(job)
    assert payloads == [
        *({"actor": "UAPP", "ask": c.id} for c in (change, late, taken)),
        {"actor": "UAPP", "change": taken.id},
    ]
    await store.apply_email_change(taken.id, "UAPP", {"to": "email m***@elsewhere.example"})
    assert (await store.get(request.id)).recipient_email == "me@elsewhere.example"
    kinds = [e.kind for e in await store.events(request.id) if e.kind != "created"]
    assert kinds == [
        "email_change_requested",
        "email_change_declined",
        "email_change_requested",
        "email_change_expired",
        "email_change_requested",
        "email_change_confirmed",
        "resent",
    ]
    await store.close()


@pytest.mark.sqlite_only("an upgrade from a schema version only SQLite databases ever had")
async def test_address_changes_the_previous_version_left_waiting_expire_on_upgrade(
    database: str,
) -> None:
    # A file of legacy schema version 10, as it could be left: a change proposed after an
    # earlier one lapsed unanswered, both still waiting.
    day_1, day_2, later, created = (
        f"{d}T09:00:00.000000+00:00"
        for d in ("2026-01-01", "2026-01-02", "2099-01-01", "2025-12-01")
    )
    with contextlib.closing(sqlite3.connect(database)) as db, db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (10)")
        for script in MIGRATIONS[:10]:
            db.executescript(script)
        db.execute(
            """INSERT INTO reward_requests (requester_id, recipient_id, origin_channel_id, amount,
                   currency, provider, product_id, product_name, message, status, created_at,
                   updated_at)
               VALUES ('UREQ', 'UREC', 'C1', '25', 'USD', 'sandbox', 'P', 'Card', 'Thanks',
                       'fulfilled', ?, ?)""",
            (created, created),
        )
        db.execute(
            """INSERT INTO email_changes (request_id, email, requested_by, requested_at, expires_at)
               VALUES (1, 'me@elsewhere.example', 'UAPP', ?, ?),
                      (1, 'jane@home.example', 'UAPP', ?, ?)""",
            (day_1, day_2, day_2, later),
        )
    store = await Store.open(database)
    request = await store.get(1)
    lapsed, waiting = [await store.email_change(i) for i in (1, 2)]
    assert (lapsed.outcome, lapsed.decided_by) == (EmailChangeOutcome.EXPIRED, "rewardbot")
    assert waiting.outcome is None
    [event] = [e for e in await store.events(request.id) if e.kind == "email_change_expired"]
    assert (event.actor, event.detail) == (
        "rewardbot",
        {"to": "email m***@elsewhere.example", "change": 1},
    )
    with pytest.raises(NotAllowed, match="waiting for its recipient"):
        await store.propose_email_change(
            request.id, "other@example.com", "UAPP", datetime.now(UTC) + timedelta(hours=1)
        )
    await store.close()


@pytest.mark.postgresql_only("several processes share a queue only on PostgreSQL")
async def test_a_job_queued_or_nudged_by_one_process_wakes_the_runners_of_the_others(
    database: str,
) -> None:
    """The poll of an idle runner is a second: a wake-up must come sooner, through the
    database, whichever process queued the job or took the provider's webhook."""
    queuing, other = await Store.open(database), await Store.open(database)
    woken = asyncio.Event()
    listening = asyncio.create_task(other.watch_jobs_queued(woken.set))
    try:
        await asyncio.wait_for(woken.wait(), 5)  # the first wake: on listening
        woken.clear()
        request, _ = await queuing.create_request(new_request(), "V1")
        await asyncio.wait_for(woken.wait(), 0.5)
        woken.clear()
        await queuing.transition(
            request.id, Status.PENDING_APPROVAL, Status.APPROVED, "UAPP", then=[JobKind.FULFIL]
        )
        await sql_execute(
            database,
            "UPDATE reward_requests SET provider = 'sandbox', provider_order_id = 'O-1'",
        )
        woken.clear()
        assert await queuing.nudge_order("sandbox", "O-1")
        await asyncio.wait_for(woken.wait(), 0.5)
        # A nudge for an order that is not ours wakes nobody.
        woken.clear()
        assert not await queuing.nudge_order("sandbox", "O-unknown")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(woken.wait(), 0.3)
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await queuing.close()
        await other.close()


@pytest.mark.postgresql_only("several processes share a queue only on PostgreSQL")
async def test_a_listener_whose_session_the_server_ended_listens_again_at_once(
    database: str,
) -> None:
    """An admin or a failover ends the listening session: the process listens again straight
    away (the next check of an idle connection is 15 s off), and a job queued then wakes it."""
    queuing, other = await Store.open(database), await Store.open(database)
    woken = asyncio.Event()
    listening = asyncio.create_task(other.watch_jobs_queued(woken.set))
    try:
        await asyncio.wait_for(woken.wait(), 5)
        woken.clear()
        await terminate_sessions(database)
        await asyncio.wait_for(woken.wait(), 3)  # the wake on listening again
        woken.clear()
        await queuing.create_request(new_request(), "V1")
        await asyncio.wait_for(woken.wait(), 0.5)
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await queuing.close()
        await other.close()


@pytest.mark.postgresql_only("ids are drawn at insert, not at commit, only on PostgreSQL")
async def test_jobs_queued_for_one_request_commit_in_the_order_of_their_ids(
    database: str,
) -> None:
    """A job of a request and kind runs only after the ones with lower ids; so a second
    transaction queuing one for the same request waits for the first to end, else its
    higher id could commit first and be claimed while the lower one is still to come."""
    first, second = await Store.open(database), await Store.open(database)
    request, _ = await first.create_request(new_request(), "V1")
    try:
        async with first._transaction() as db:
            await insert_job(db, JobKind.FULFIL, request.id, {}, now_timestamp())

            async def queue_another() -> None:
                async with second._transaction() as other:
                    await insert_job(other, JobKind.FULFIL, request.id, {}, now_timestamp())

            queuing = asyncio.create_task(queue_another())
            await asyncio.sleep(0.5)
            assert not queuing.done(), "the second queued beside the first, uncommitted one"
        await asyncio.wait_for(queuing, 5)
    finally:
        await first.close()
        await second.close()
