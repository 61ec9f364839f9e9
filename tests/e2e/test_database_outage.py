"""PostgreSQL goes away under a running ``rewardbot serve`` while people keep asking for and
approving rewards through the Slack emulator: the server ends the bot's sessions once, then
over and over for a few seconds (as an admin or a failover does), then refuses every
connection to the database for a few seconds.

The bot rides it out: the process never exits; ``/readyz`` stays ready while only sessions are
ended (the pool replaces them), says ``database`` is failing for as long as connections are
refused, and is ready again once they are accepted; a Slack request that came while the
database was unavailable was answered with an error the user sees (a click also says why, in
words) and, made again, stored nothing twice; none was answered as done and then lost; every
reward ends fulfilled with one order at the provider and one delivery DM; every job's end is
recorded (none left to run again when its lease expires); the process LISTENs again.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import make_url

from bot.app import DATABASE_UNAVAILABLE
from bot.offline.emulator import SlackEmulator
from bot.offline.emulator.workspace import Message
from bot.slack.ids import APPROVE_ACTION, REWARD_MODAL
from bot.store import DATABASE_ERRORS
from bot.store.wakeups import LISTENER_NAME
from tests.databases import postgres_admin_url, terminate_sessions, unreachable
from tests.fakes import orders_by_request, serve
from tests.fakes.giftronaut import CLIENT_ID as GIFTRONAUT_ID
from tests.fakes.giftronaut import CLIENT_SECRET as GIFTRONAUT_SECRET
from tests.fakes.giftronaut import GiftronautState
from tests.fakes.giftronaut import app as giftronaut_app
from tests.slack_stack import APPROVERS, ARJUN, GOOD_VALUES, JANE, MAYA, OMAR, TEAM
from tests.support import BotProcess, delivery_dms, free_port, poll, slack_env, sql_rows

pytestmark = [
    pytest.mark.postgresql_only("ends and refuses a PostgreSQL server's sessions"),
    pytest.mark.exclusive("outages timed in seconds, and a deadline to come back by"),
]

REWARDS = 20  # Maya's, asked for and approved one after another through all of it
CARD = "giftronaut:branded:10042"
OUTAGE = 3.0  # seconds: sessions ended again and again; then connections refused
# Someone whom Slack showed a failure tries again, this often at most.
ATTEMPTS = 40
# Whatever the outages held up (a job backing off after failed attempts) is done within this.
SETTLE_WITHIN = 60.0
DECIDED = frozenset({"approved", "ordering", "fulfilled"})


async def _read(database: str, sql: str, **params: Any) -> list[dict[str, Any]] | None:
    """The rows, or ``None`` while the database does not let this test in either."""
    try:
        return await sql_rows(database, sql, **params)
    except DATABASE_ERRORS:
        return None


def _approval_card(messages: list[Message], request_id: int) -> Message | None:
    """The message with an Approve button for ``request_id``, if one came."""
    for message in messages:
        for block in message.blocks or []:
            for element in block.get("elements", []) or []:
                if (element.get("action_id"), element.get("value")) == (
                    APPROVE_ACTION,
                    str(request_id),
                ):
                    return message
    return None


@dataclass
class Users:
    """Maya and Omar asking for rewards and Arjun approving them, as people do: what Slack
    showed them had failed they do again. ``replies``: each Slack request they made and the
    HTTP status the bot answered (200: done; else Slack showed them a failure)."""

    emulator: SlackEmulator
    database: str
    replies: list[tuple[str, int]] = field(default_factory=list)
    approved: int = 0

    async def open_form(self, user: str) -> str:
        """``/reward`` until the modal opens; its view id."""
        ws = self.emulator.workspace
        for _ in range(ATTEMPTS):
            before = ws.current_view(user)
            reply = await self.emulator.driver.slash_command(user, TEAM)
            self.replies.append(("/reward", reply.status))

            def opened(before: Any = before) -> Any:
                view = ws.current_view(user)
                if view is None or view.get("callback_id") != REWARD_MODAL:
                    return None
                return view if before is None or view["id"] != before["id"] else None

            if view := await poll(opened, 5):
                return str(view["id"])
        raise AssertionError(f"{user}'s reward form never opened")

    async def submit_once(self, user: str, view_id: str, message: str) -> bool:
        """Press Submit once; whether the bot answered that it was done."""
        values = {**GOOD_VALUES, "card": CARD, "message": message}
        reply = await self.emulator.driver.submit_view(user, values, view_id)
        self.replies.append(("submit", reply.status))
        assert not (reply.responded and reply.json.get("errors")), reply.json
        return reply.responded

    async def submit(self, user: str, view_id: str, message: str) -> int:
        """Submit until the bot answers; the request stored for ``message``: one, however often
        it was submitted (read once the database lets this test in)."""
        for _ in range(ATTEMPTS):
            if await self.submit_once(user, view_id, message):
                break
            await asyncio.sleep(0.3)
        sql = "SELECT id FROM reward_requests WHERE message = :message"
        rows = await poll(lambda: _read(self.database, sql, message=message), SETTLE_WITHIN)
        assert rows and len(rows) == 1, f"{message!r}: answered, then stored as {rows}"
        return int(rows[0]["id"])

    async def ask(self, user: str, message: str) -> int:
        return await self.submit(user, await self.open_form(user), message)

    async def approve_once(self, request_id: int) -> bool:
        """Arjun clicks Approve on the request's card (once it came); whether the bot answered."""
        card = await self.emulator.wait_for(
            lambda: _approval_card(self.emulator.workspace.dm_messages(ARJUN), request_id),
            SETTLE_WITHIN,
            f"Arjun's card for #{request_id}",
        )
        reply = await self.emulator.driver.click_button(
            ARJUN, card.channel, card.ts, APPROVE_ACTION
        )
        self.replies.append(("approve", reply.status))
        return reply.responded

    async def approve(self, request_id: int) -> None:
        """Approve until the request is decided: a click Slack showed failed, or one the bot
        answered and then explained it could not store, is made again."""
        sql = "SELECT status FROM reward_requests WHERE id = :id"

        async def decided() -> bool:
            rows = await _read(self.database, sql, id=request_id)
            return bool(rows) and rows[0]["status"] in DECIDED  # type: ignore[index]

        for _ in range(ATTEMPTS):
            await self.approve_once(request_id)
            if await poll(decided, 3):
                break
        await self.emulator.wait_for(decided, SETTLE_WITHIN, f"#{request_id} approved")
        self.approved += 1

    async def keep_rewarding(self) -> None:
        for number in range(1, REWARDS + 1):
            await self.approve(await self.ask(MAYA, f"Outage reward {number}"))

    async def until_approved(self, count: int) -> None:
        await self.emulator.wait_for(lambda: self.approved >= count, 60, f"{count} approvals")


async def _readiness(session: aiohttp.ClientSession, port: int) -> tuple[int, list[str]]:
    """``/readyz``'s status and failing checks (``["not JSON"]`` for any other answer)."""
    async with session.get(
        f"http://127.0.0.1:{port}/readyz", timeout=aiohttp.ClientTimeout(total=10)
    ) as response:
        if response.content_type != "application/json":
            return response.status, ["not JSON"]
        return response.status, list((await response.json())["failing"])


async def _server_now() -> datetime:
    admin = postgres_admin_url()
    assert admin is not None
    [row] = await sql_rows(admin, "SELECT now() AS now")
    return row["now"]  # type: ignore[no-any-return]


async def _listening_since(database: str) -> list[datetime]:
    """When each session LISTENing for queued jobs on ``database`` started, read from the
    admin connection."""
    admin = postgres_admin_url()
    assert admin is not None
    sql = (
        "SELECT backend_start FROM pg_stat_activity"
        " WHERE datname = :name AND application_name = :app"
    )
    name = make_url(database).database
    rows = await _read(admin, sql, name=name, app=LISTENER_NAME)
    return [row["backend_start"] for row in rows or []]


@dataclass
class Outages:
    """Brings the outages on, in step with the users, and notes what ``/readyz`` said."""

    bot: BotProcess
    users: Users
    database: str
    session: aiohttp.ClientSession
    while_refused: list[tuple[int, list[str]]] = field(default_factory=list)
    ready_again_after: float | None = None
    refused_until: datetime | None = None

    async def readiness(self) -> tuple[int, list[str]]:
        return await _readiness(self.session, self.bot.port)

    async def run(self) -> None:
        await self.users.until_approved(3)
        await terminate_sessions(self.database)
        # The pool finds the ended sessions out when it hands them out, and opens new ones.
        assert await self.readiness() == (200, [])

        await self.users.until_approved(7)
        ends = time.monotonic() + OUTAGE
        while time.monotonic() < ends:
            await terminate_sessions(self.database)
            await asyncio.sleep(0.1)

        await self.users.until_approved(12)
        await self.refuse_connections()

    async def refuse_connections(self) -> None:
        """Omar's first reward waits for approval and his second is in a form he has open when
        the database starts refusing connections; he submits and Arjun approves meanwhile."""
        users, ws = self.users, self.users.emulator.workspace
        waiting = await users.ask(OMAR, "Outage probe 1")
        await users.emulator.wait_for(
            lambda: _approval_card(ws.dm_messages(ARJUN), waiting), 20, "Omar's card"
        )
        form = await users.open_form(OMAR)
        told = len(ws.ephemerals(ARJUN))
        async with unreachable(self.database):
            ends = time.monotonic() + OUTAGE
            self.while_refused.append(await self.readiness())
            # Slack shows the submission a failure (the form stays open); the click, answered
            # at its ack or not, is explained in words (so are Arjun's clicks on Maya's cards
            # meanwhile).
            assert not await users.submit_once(OMAR, form, "Outage probe 2")
            await users.approve_once(waiting)
            await users.emulator.wait_for(
                lambda: {e.text for e in ws.ephemerals(ARJUN)[told:]} == {DATABASE_UNAVAILABLE},
                5,
                "Arjun told why his click failed",
            )
            while time.monotonic() < ends:
                self.while_refused.append(await self.readiness())
                await asyncio.sleep(0.2)
        self.refused_until = await _server_now()
        back = time.monotonic()
        await poll(self.ready, 20)
        self.ready_again_after = time.monotonic() - back
        # Both again: the form is stored once, the approval goes through.
        await users.approve(await users.submit(OMAR, form, "Outage probe 2"))
        await users.approve(waiting)

    async def ready(self) -> bool:
        return await self.readiness() == (200, [])


@pytest.fixture
async def giftronaut() -> AsyncIterator[tuple[GiftronautState, str]]:
    state = GiftronautState(polls_to_complete=1)
    async with serve(giftronaut_app(state)) as url:
        yield state, url


async def test_the_bot_rides_out_postgresql_ending_and_refusing_its_connections(
    emulator: SlackEmulator,
    database: str,
    tmp_path: Path,
    giftronaut: tuple[GiftronautState, str],
) -> None:
    state, url = giftronaut
    env = slack_env(emulator, database, APPROVERS) | {
        "REWARDBOT_PROVIDERS": "giftronaut",
        "GIFTRONAUT_CLIENT_ID": GIFTRONAUT_ID,
        "GIFTRONAUT_CLIENT_SECRET": GIFTRONAUT_SECRET,
        "GIFTRONAUT_API_URL": url,
    }
    bot = BotProcess(emulator, env, free_port(), tmp_path / "bot.log")
    users = Users(emulator, database)
    started = time.monotonic()
    rewarding: asyncio.Task[None] | None = None
    try:
        async with aiohttp.ClientSession() as session:
            await bot.start()
            outages = Outages(bot, users, database, session)
            await poll(outages.ready, 20)
            rewarding = asyncio.create_task(users.keep_rewarding())
            await outages.run()
            await rewarding

            async def all_fulfilled() -> bool:
                rows = await _read(database, "SELECT status FROM reward_requests")
                return bool(rows) and {r["status"] for r in rows or []} == {"fulfilled"}

            await emulator.wait_for(all_fulfilled, SETTLE_WITHIN, "every reward fulfilled")
            settled = time.monotonic() - started

            async def listening_again() -> bool:
                since = await _listening_since(database)
                return any(start > outages.refused_until for start in since)  # type: ignore[operator]

            await emulator.wait_for(listening_again, 30, "a LISTEN after the outage")
            await asyncio.sleep(1.5)  # anything still queued would run now: let it show
            assert bot.running, "the bot exited"
    except BaseException:
        print(f"--- Slack requests and answers: {users.replies}")
        print(f"--- bot log, last lines ---\n{bot.log_tail(150)}")
        raise
    finally:
        if rewarding is not None:
            rewarding.cancel()
        await bot.stop()

    assert outages.while_refused, "/readyz was never asked while connections were refused"
    assert all(answer == (503, ["database"]) for answer in outages.while_refused), (
        outages.while_refused
    )
    assert outages.ready_again_after is not None and outages.ready_again_after < 10
    rows = await sql_rows(database, "SELECT id, message FROM reward_requests")
    expected = [f"Outage reward {n}" for n in range(1, REWARDS + 1)]
    assert Counter(row["message"] for row in rows) == Counter(
        [*expected, "Outage probe 1", "Outage probe 2"]
    )
    ids = {int(row["id"]) for row in rows}
    assert orders_by_request(state.created_keys) == Counter(dict.fromkeys(ids, 1))
    assert delivery_dms(emulator, JANE) == Counter(dict.fromkeys(ids, 1))
    log = bot.log.read_text()
    # Every Slack listener that failed, failed on the database (and was answered so)...
    assert "unhandled error in a Slack listener" not in log
    # ...and every job's end was recorded (one left unrecorded would run again).
    assert "Task exception was never retrieved" not in log
    failed = Counter(what for what, status in users.replies if status != 200)
    print(f"all fulfilled after {settled:.0f}s; Slack showed failures of {dict(failed)}")
