"""Shared end-to-end helpers: the real ``rewardbot serve`` or ``rewardbot socket`` as a subprocess
against the Slack emulator (for the tests that kill it or check how it starts and stops, or run
several on one database), provider adapters
pointed at the vendor fakes, the bot with only Giftronaut enabled, and the bot under an
approval policy file (teams, finance, budgets).

Test modules share helpers through this module only, never by importing each other."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import aiohttp
import httpx
from aiohttp import web
from aiohttp.typedefs import Middleware
from pydantic import SecretStr
from sqlalchemy import AsyncAdaptedQueuePool, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain import Money, NewRewardRequest, RewardRequest, Status
from bot.offline.emulator import SlackEmulator
from bot.offline.emulator.workspace import Message
from bot.offline.local import running_bot
from bot.rewards.orders import new_idempotency_key
from bot.server import SLACK_PATH
from bot.slack.ids import CONFIRM_EMAIL_ACTION
from bot.store import Change, JobKind, Store
from providers.base import Provider
from providers.cardpluspay import CardPlusPayProvider
from providers.giftronaut import GiftronautProvider
from providers.http import RetryPolicy
from providers.sandbox import SandboxProvider
from tests.databases import engine_for
from tests.fakes import serve
from tests.fakes.cardpluspay import API_KEY as CARDPLUSPAY_API_KEY
from tests.fakes.cardpluspay import CardPlusPayState
from tests.fakes.cardpluspay import app as cardpluspay_app
from tests.fakes.giftronaut import CLIENT_ID as GIFTRONAUT_CLIENT_ID
from tests.fakes.giftronaut import CLIENT_SECRET as GIFTRONAUT_CLIENT_SECRET
from tests.fakes.giftronaut import GiftronautState
from tests.fakes.giftronaut import app as giftronaut_app
from tests.slack_stack import (
    APPROVERS,
    ARJUN,
    GOOD_VALUES,
    JANE,
    LIN,
    MAYA,
    TEAM,
    Stack,
    sandbox_stack,
)


async def sql_rows(database: str, statement: str, **params: Any) -> list[dict[str, Any]]:
    """The rows ``statement`` (SQL with ``:name`` parameters) reads from ``database`` (the
    ``database`` fixture: SQLite or PostgreSQL), each as column name → value. Write SQL both
    understand; a timestamp or amount is compared in the store's own terms, not the test's."""
    engine = engine_for(database)
    try:
        return await _rows(engine, statement, params)
    finally:
        await engine.dispose()


class SqlReader:
    """:func:`sql_rows` for a test that reads ``database`` over and over while bots run on it:
    the reader keeps its connections (two at most) between reads, so a read is a query, not a
    new connection (on PostgreSQL a server process started, and an engine's first look at the
    server, each time). :meth:`close` it when done."""

    def __init__(self, database: str) -> None:
        self._engine = engine_for(database, poolclass=AsyncAdaptedQueuePool, pool_size=2)

    async def rows(self, statement: str, **params: Any) -> list[dict[str, Any]]:
        return await _rows(self._engine, statement, params)

    async def close(self) -> None:
        await self._engine.dispose()


async def _rows(
    engine: AsyncEngine, statement: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        result = await connection.execute(text(statement), params)
        return [dict(row) for row in result.mappings()]


async def sql_execute(database: str, statement: str, **params: Any) -> int:
    """Run ``statement`` (SQL with ``:name`` parameters) on ``database`` in a transaction of its
    own, as another process would; how many rows it changed."""
    engine = engine_for(database)
    try:
        async with engine.begin() as connection:
            return (await connection.execute(text(statement), params)).rowcount
    finally:
        await engine.dispose()


async def rewardbot(
    *args: str,
    env: Mapping[str, str],
    cwd: Path | None = None,
    stdout: int | IO[bytes] = subprocess.DEVNULL,
    stderr: int | IO[bytes] = subprocess.PIPE,
) -> asyncio.subprocess.Process:
    """``rewardbot <args>`` started as an admin starts it: a real process (``python -m bot``)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, env=env, cwd=cwd, stdout=stdout, stderr=stderr
    )


def serve_args(port: int) -> list[str]:
    """``serve`` on this machine's loopback, on ``port``."""
    return ["serve", "--host", "127.0.0.1", "--port", str(port)]


async def rewardbot_exits(*args: str, env: Mapping[str, str], cwd: Path) -> tuple[int, str]:
    """Run ``rewardbot`` while this test's event loop serves the emulator (which answers
    ``auth.test``); its exit code and standard error, or a failure if it does not exit."""
    process = await rewardbot(*args, env=env, cwd=cwd)
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError("rewardbot did not exit") from None
    assert process.returncode is not None
    return process.returncode, stderr.decode()


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_healthy(
    port: int,
    *,
    process: asyncio.subprocess.Process | None = None,
    timeout: float = 20.0,  # noqa: ASYNC109 - polling deadline, not I/O
) -> None:
    """Wait until ``GET /healthz`` on ``port`` answers 200; fail at once if ``process`` exits,
    and after ``timeout`` seconds otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as session:
        while loop.time() < deadline:
            if process is not None and process.returncode is not None:
                raise AssertionError(f"rewardbot exited with {process.returncode}")
            try:
                async with session.get(
                    f"http://127.0.0.1:{port}/healthz", timeout=aiohttp.ClientTimeout(total=2)
                ) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientConnectionError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("rewardbot never became healthy")


def slack_env(emulator: SlackEmulator, database: str, approvers: tuple[str, ...]) -> dict[str, str]:
    """The environment of a bot process talking to ``emulator``: this process's environment
    without any ``SLACK_``/``REWARDBOT_`` setting, plus the emulator's credentials, the
    database and the approvers."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REWARDBOT_"))},
        "SLACK_BOT_TOKEN": emulator.bot_token,
        "SLACK_SIGNING_SECRET": emulator.signing_secret,
        "SLACK_API_URL": emulator.api_url,
        "REWARDBOT_DATABASE": str(database),
        "REWARDBOT_APPROVERS": ",".join(approvers),
    }


@dataclass
class BotProcess:
    """Starts and kills ``rewardbot serve`` on one port and one database.

    ``routes_slack``: each start points the emulator's Request URL at this process (one bot);
    with several processes, set it False and give the emulator all their ``request_url``\\ s.
    ``start_within``: seconds a start may take (a machine busy with several processes starts
    each one slowly). Output of every run is appended to ``log``."""

    emulator: SlackEmulator
    env: dict[str, str]
    port: int
    log: Path
    process: asyncio.subprocess.Process | None = None
    routes_slack: bool = True
    start_within: float = 20.0

    @property
    def request_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{SLACK_PATH}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        await self._launch(serve_args(self.port), self.env)
        if self.routes_slack:
            self.emulator.set_request_url(self.request_url)

    async def _launch(self, args: list[str], env: Mapping[str, str]) -> None:
        """Start ``rewardbot <args>``, its output appended to ``log``, and wait until it
        answers ``/healthz`` on ``port``."""
        with self.log.open("ab") as log:
            self.process = await rewardbot(*args, env=env, stdout=log, stderr=log)
        await wait_healthy(self.port, process=self.process, timeout=self.start_within)

    async def kill(self) -> None:
        """SIGKILL (nothing is given back or flushed), and reap it."""
        if self.process is None:
            return
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM (a graceful stop), SIGKILL if it takes longer than 20 seconds."""
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                await self.kill()
                raise

    def log_tail(self, lines: int = 60) -> str:
        """The last ``lines`` lines this process (all its runs) wrote."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class SocketBotProcess(BotProcess):
    """Starts and kills ``rewardbot socket`` on one database, with its health port on ``port``.

    Each start waits for the process's Socket Mode connection and notes the emulator's number
    for it in ``connections`` (see ``SocketModeHub.connection_numbers``): start several
    processes one at a time, so that the connection that appears is this one's.
    ``routes_slack``: each start has the emulator deliver over Socket Mode."""

    connections: list[int] = field(default_factory=list)

    @property
    def envelopes_answered(self) -> int:
        """Envelopes this process acked, over all its runs' connections."""
        return sum(self.emulator.socket.answered[number] for number in self.connections)

    async def start(self) -> None:
        hub = self.emulator.socket
        before = set(hub.connection_numbers)
        env = self.env | {
            "SLACK_APP_TOKEN": self.emulator.app_token,
            "REWARDBOT_HEALTH_PORT": str(self.port),
        }
        await self._launch(["socket"], env)
        opened = await self.emulator.wait_for(
            lambda: set(hub.connection_numbers) - before,
            self.start_within,
            "its Socket Mode connection",
        )
        self.connections += sorted(opened)
        if self.routes_slack:
            self.emulator.use_socket_mode()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def giftronaut_adapter(
    state: GiftronautState, *middlewares: Middleware
) -> AsyncIterator[GiftronautProvider]:
    """A Giftronaut adapter pointed at a fake Giftronaut holding ``state``, with fast retries
    and polls."""
    app = giftronaut_app(state)
    app.middlewares.extend(middlewares)
    async with serve(app) as url, httpx.AsyncClient() as http:
        yield GiftronautProvider(
            http,
            client_id=GIFTRONAUT_CLIENT_ID,
            client_secret=SecretStr(GIFTRONAUT_CLIENT_SECRET),
            base_url=url,
            retry=RetryPolicy(attempts=3, base_delay=0.01),
            poll_interval=0.02,
        )


@asynccontextmanager
async def bot_with(
    emulator: SlackEmulator, database: str, providers: Mapping[str, Provider], **options: Any
) -> AsyncIterator[Stack]:
    """The bot with only ``providers`` enabled (``options`` go to ``running_bot``). The
    :class:`Stack`'s sandbox serves its helpers only; it is not enabled in this bot."""
    async with running_bot(
        emulator, database=database, approvers=APPROVERS, providers=providers, **options
    ) as runtime:
        yield Stack(emulator, runtime, SandboxProvider())


@asynccontextmanager
async def giftronaut_stack(
    emulator: SlackEmulator, database: str, state: GiftronautState
) -> AsyncIterator[Stack]:
    """The bot with only Giftronaut enabled, pointed at a fake Giftronaut holding ``state``."""
    async with (
        giftronaut_adapter(state) as giftronaut,
        bot_with(emulator, database, {"giftronaut": giftronaut}) as stack,
    ):
        yield stack


def address_checks(stack: Stack, recipient: str = JANE) -> list[Message]:
    """The DMs asking ``recipient`` to confirm an address an approver proposed, oldest first."""
    return [m for m in stack.ws.dm_messages(recipient) if "asks to email your" in m.text]


async def confirm_new_address(stack: Stack, recipient: str = JANE, nth: int = 1) -> None:
    """``recipient`` confirms, in their DM, the ``nth`` address an approver proposed."""
    await stack.emulator.wait_for(
        lambda: len(address_checks(stack, recipient)) >= nth, 5, f"address check #{nth}"
    )
    await stack.click(recipient, address_checks(stack, recipient)[nth - 1], CONFIRM_EMAIL_ACTION)


@asynccontextmanager
async def cardpluspay_adapter(
    state: CardPlusPayState, *middlewares: Middleware
) -> AsyncIterator[CardPlusPayProvider]:
    """A CardPlusPay adapter pointed at a fake CardPlusPay holding ``state``, with fast
    retries, polls and settle time."""
    app = cardpluspay_app(state)
    app.middlewares.extend(middlewares)
    async with serve(app) as url, httpx.AsyncClient(timeout=5.0) as http:
        yield CardPlusPayProvider(
            http,
            CARDPLUSPAY_API_KEY,
            f"{url}/v1",
            retry=RetryPolicy(attempts=3, base_delay=0.01),
            poll_interval=0.05,
            settle_time=timedelta(seconds=0.3),
        )


# -- the bot under an approval policy file -----------------------------------------------------
# Team ``eng`` is the Slack user group S0ENG (Maya, Jane, Arjun) managed by Arjun; Lin is the
# default approver; Finn is finance (user group S0FINANCE); Omar is in no team.

FINN = "U0FINN"
ENG_GROUP, FINANCE_GROUP = "S0ENG", "S0FINANCE"
APPROVALS_CHANNEL = "C0APPROVALS"

POLICY = """
currency = "GBP"

[rates]
USD = "0.80"

[approvals]
default_approvers = ["U0LIN"]
second_approval_above = "100"
second_approvers = ["S0FINANCE"]
max_amount = "400"

[teams.eng]
members = ["S0ENG"]
managers = ["U0ARJUN"]
monthly_budget = "300"
"""


@asynccontextmanager
async def policy_stack(
    emulator: SlackEmulator, database: str, tmp_path: Path, policy: str = POLICY
) -> AsyncIterator[Stack]:
    """The bot on ``database`` with the sandbox provider and ``policy`` as its policy file (in
    ``tmp_path``), in a workspace that has the policy's user groups, Finn and the approvals
    channel."""
    ws = emulator.workspace
    ws.add_user(FINN, name="finn", real_name="Finn Finance")
    ws.add_usergroup(ENG_GROUP, "eng", [MAYA, JANE, ARJUN])
    ws.add_usergroup(FINANCE_GROUP, "finance", [FINN])
    ws.add_channel(APPROVALS_CHANNEL, name="reward-approvals", members=[ARJUN, LIN, FINN])
    path = tmp_path / "rewardbot.toml"
    path.write_text(policy)
    sandbox = SandboxProvider(completion_delay=0.05)
    async with sandbox_stack(emulator, database, sandbox, policy=path) as stack:
        yield stack


async def all_requests(stack: Stack) -> list[RewardRequest]:
    """Every request the bot has stored, oldest first."""
    return await stack.runtime.store.requests_created(
        datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    )


async def submit_request(stack: Stack, requester: str = MAYA, **values: str) -> int:
    """Submit the modal (``GOOD_VALUES`` with ``values`` changed) and return the new request's
    id once its cards went out."""
    request_id = len(await all_requests(stack)) + 1
    await stack.request_reward({**GOOD_VALUES, **values}, requester=requester)

    async def announced() -> bool:
        if len(await all_requests(stack)) < request_id:
            return False
        return bool(await stack.runtime.store.approval_cards(request_id))

    await stack.emulator.wait_for(announced, 5, f"request #{request_id} and its cards")
    return request_id


def top_level(stack: Stack, channel: str = TEAM) -> list[Message]:
    """The messages of ``channel`` that are not thread replies."""
    return [m for m in stack.ws.messages(channel) if m.thread_ts in (None, m.ts)]


# The metadata event type of the delivery DM (bot.slack.gateway).
DELIVERY_EVENT = "rewardbot_delivery"


def delivery_dms(emulator: SlackEmulator, recipient: str) -> Counter[int]:
    """The delivery DMs ``recipient`` got, per request id (exactly-once: each 1)."""
    counted: Counter[int] = Counter()
    for message in emulator.workspace.dm_messages(recipient):
        metadata = message.metadata or {}
        if metadata.get("event_type") == DELIVERY_EVENT:
            counted[int(metadata["event_payload"]["request_id"])] += 1
    return counted


async def poll(check: Callable[[], Any], seconds: float, every: float = 0.1) -> Any:
    """``check()`` (awaited if it is a coroutine) ``every`` so often until truthy, for at most
    ``seconds``; its last value."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if isinstance(value, Awaitable):
            value = await value
        if value or time.monotonic() >= deadline:
            return value
        await asyncio.sleep(every)


async def runa_requests(
    database: str, count: int, requesters: list[str], recipient: str, channel: str
) -> list[int]:
    """``count`` requests for 25 GBP Runa cards, stored as the modal would store them (the
    requesters taking turns), waiting for approval, with no job queued: their announcements
    are dropped, Slack's pace in one channel being another test's subject."""
    store = await Store.open(database)
    try:
        ids = []
        for number in range(count):
            new = NewRewardRequest(
                requester_id=requesters[number % len(requesters)],
                recipient_id=recipient,
                origin_channel_id=channel,
                face_value=Money(amount=Decimal("25.00"), currency="GBP"),
                provider="runa",
                product_id="COFFEE-GB",
                product_name="Fake Coffee UK",
                message=f"Thank you, {number}",
            )
            request, _ = await store.create_request(new, f"submission-{number}")
            ids.append(request.id)
    finally:
        await store.close()
    await sql_execute(database, "DELETE FROM jobs")
    return ids


async def approve_all(database: str, ids: list[int], approver: str) -> None:
    """``approver`` approves every request in one transaction (as a bulk approval does): a
    ``fulfil`` job each, all due at once. Their announcements are dropped as well."""
    store = await Store.open(database)
    try:
        approvals = [
            Change(
                request_id,
                Status.PENDING_APPROVAL,
                Status.APPROVED,
                then=(JobKind.FULFIL,),
                columns={
                    "decided_by": approver,
                    "idempotency_key": new_idempotency_key(request_id),
                },
            )
            for request_id in ids
        ]
        assert await store.transition_all(approvals, approver)
    finally:
        await store.close()
    await sql_execute(database, "DELETE FROM jobs WHERE kind = 'notify'")
