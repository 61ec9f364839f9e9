"""Chaos: a fleet of real rewardbot processes on one database approves rewards across the
sandbox, Giftronaut and UGiftMe while

* the vendor fakes drop the connection after creating an order, answer 500 after creating it,
  answer 401/403 to a replay of a known key (or to a first create), or keep an order pending
  for many seconds; some sandbox cards are refused, or fail while pending (its magic amounts);
* a random process is SIGKILLed at random moments and restarted (one is always up);
* one process's wall clock is stepped forward and back by minutes.

The fleets (a :class:`Fleet` each, named so in the test ids):

* ``serve-x2-40-rewards``, on SQLite: two ``rewardbot serve`` processes on one file, behind
  the emulator acting as their load balancer, 40 rewards;
* ``serve-x3-100-rewards``, on PostgreSQL: three ``rewardbot serve`` processes on one database
  (claims by ``FOR UPDATE SKIP LOCKED``), behind the balancer, 100 rewards;
* ``socket-x3-100-rewards``, on PostgreSQL: three ``rewardbot socket`` processes, one Socket
  Mode connection each, over which the emulator spreads the envelopes as Slack does, 100
  rewards (an envelope on a connection that dies is lost, and the user tries again).

Then the chaos stops, every process runs on the true time, and once every request has settled
the database is read directly. Exactly-once means: no reward request has two provider orders,
none has two delivery DMs, each ``fulfilled`` one has exactly one of each, and each request is
``fulfilled``, ``needs_review`` or ``failed`` with proof that no card exists.

The run is driven by a seed, printed first (``chaos seed N``) and named in every failure:
``CHAOS_SEED=N`` replays the same plan (rewards, faults, kill and clock-step timings; the
interleaving with the processes is as close as timing allows) on whichever fleet ``-k``
selects. ``CHAOS_CALM=1`` runs the same harness without faults, kills or clock steps, to tell
harness problems from real ones; ``CHAOS_WITHOUT=faults,kills,clock`` (any of them) leaves out
only those, to tell which kind of chaos breaks exactly-once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from bot.clock import OFFSET_FILE_VARIABLE
from bot.offline.emulator import EmulatorError, SlackEmulator, Workspace
from bot.offline.emulator.workspace import Message
from bot.slack.ids import APPROVE_ACTION, REWARD_MODAL
from tests.fakes import orders_by_request, serve
from tests.fakes.giftronaut import CLIENT_ID as GIFTRONAUT_ID
from tests.fakes.giftronaut import CLIENT_SECRET as GIFTRONAUT_SECRET
from tests.fakes.giftronaut import GiftronautState
from tests.fakes.giftronaut import app as giftronaut_app
from tests.fakes.ugiftme import UGiftMeState
from tests.fakes.ugiftme import app as ugiftme_app
from tests.slack_stack import APPROVERS, JANE, MAYA, OMAR, build_workspace
from tests.support import (
    BotProcess,
    SocketBotProcess,
    SqlReader,
    delivery_dms,
    free_port,
    poll,
    slack_env,
)

pytestmark = pytest.mark.exclusive("several bot processes against a deadline")

SEED_VARIABLE = "CHAOS_SEED"
CALM_VARIABLE = "CHAOS_CALM"
WITHOUT_VARIABLE = "CHAOS_WITHOUT"
CHAOS_KINDS = frozenset({"faults", "kills", "clock"})
SETTLED = frozenset({"fulfilled", "needs_review", "failed"})

CHANNEL = "C0CHAOS"
# Each requester asks for this many rewards, one after the other; more rewards, more requesters
# at once (so a run of 100 takes about as long as one of 40).
REWARDS_PER_REQUESTER = 10
RECIPIENTS = (JANE, OMAR, "U0CHAOSRC1", "U0CHAOSRC2", "U0CHAOSRC3", "U0CHAOSRC4")
# provider -> (the card's option value, face values to pick from)
CARDS: dict[str, tuple[str, tuple[int, ...]]] = {
    "sandbox": ("sandbox:SBX-BOOKS-GBP", tuple(range(5, 61, 5))),
    "giftronaut": ("giftronaut:branded:10042", (25, 50, 100)),
    "ugiftme": ("ugiftme:AMAZON_UK_STD|Amazon UK", tuple(range(5, 51, 5))),
}
VENDOR_FAULTS = (
    "drop after create",
    "500 after create",
    "drop after create, 401 on the replay",
    "500 after create, 403 on the replay",
    "pending for long",
    "401 on create",
    "403 on create",
)
# The sandbox's documented magic amounts (the cents decide).
SANDBOX_FAULTS = {"refused (.91)": ".91", "fails while pending (.94)": ".94"}

# Timings (seconds). On 2 cores of its own, the SQLite run takes about a minute and each
# PostgreSQL one about two; a machine busy with other work makes them slower.
CHAOS_AT_LEAST = 35.0  # kills and clock steps go on at least this long, and while driving
SETTLE_WITHIN = 60.0  # once the chaos is over, every request must have settled by then
AFTER_SETTLED = 3.0  # then anything still queued may show (a late duplicate DM)
# A process (re)started must answer this soon: each start is a second or two of CPU, and the
# fleet, the emulator, the fakes and the database share the machine's cores.
START_WITHIN = 60.0
# How often a requester looks in the database for their request or its decision: ten of them
# looking every 0.1 s would take a good share of a core from the processes under test.
DATABASE_POLL = 0.25


@dataclass(frozen=True)
class Fleet:
    """The rewardbot processes of a run, all on one database, and the rewards driven through
    them. ``command`` ``serve``: behind the emulator's load balancer; ``socket``: a Socket Mode
    connection each, the emulator spreading the envelopes over them."""

    command: str
    processes: int
    rewards: int
    # The hard cap of the whole run.
    budget: float

    def __str__(self) -> str:
        return f"{self.command}-x{self.processes}-{self.rewards}-rewards"

    def requesters(self) -> tuple[str, ...]:
        """Who asks for the rewards, each for ``REWARDS_PER_REQUESTER`` or fewer."""
        count = math.ceil(self.rewards / REWARDS_PER_REQUESTER)
        return (MAYA, *(f"U0CHAOSRQ{n}" for n in range(1, count)))

    def process(self, emulator: SlackEmulator, env: dict[str, str], log: Path) -> BotProcess:
        """One process of the fleet (not started); Slack is routed to the fleet as a whole."""
        kind = SocketBotProcess if self.command == "socket" else BotProcess
        return kind(emulator, env, free_port(), log, routes_slack=False, start_within=START_WITHIN)

    def route_slack(self, emulator: SlackEmulator, bots: list[BotProcess], seed: int) -> None:
        if self.command == "socket":
            emulator.use_socket_mode()
        else:
            emulator.set_request_urls(
                [bot.request_url for bot in bots], rng=random.Random(f"{seed}-route")
            )


ON_SQLITE = Fleet("serve", processes=2, rewards=40, budget=175.0)
ON_POSTGRESQL = (
    Fleet("serve", processes=3, rewards=100, budget=300.0),
    Fleet("socket", processes=3, rewards=100, budget=300.0),
)


@dataclass(frozen=True)
class Reward:
    """One reward of the plan: who asks whom for what, and the fault armed for its order."""

    index: int
    requester: str
    recipient: str
    approver: str
    provider: str
    card: str
    amount: str
    fault: str | None
    # Seconds an order stays pending ("pending for long").
    pending: float = 0.0
    # Seconds the requester waits before asking (spreads the approvals over the chaos).
    pause: float = 0.0

    def message(self, seed: int) -> str:
        return f"Chaos reward {self.index} (seed {seed})"


def plan_rewards(seed: int, faults: bool, fleet: Fleet) -> list[Reward]:
    """The fleet's rewards, spread evenly over the providers and requesters, with their
    faults."""
    rng = random.Random(f"{seed}-plan")
    requesters = fleet.requesters()
    providers = [list(CARDS)[i % len(CARDS)] for i in range(fleet.rewards)]
    rng.shuffle(providers)
    rewards = []
    for index, provider in enumerate(providers):
        card, amounts = CARDS[provider]
        fault = None
        # Drawn whether or not faults are on, so the rest of the plan is the same either way.
        chosen = rng.choice(VENDOR_FAULTS) if rng.random() < 0.6 else None
        sandbox_fault = rng.choice(list(SANDBOX_FAULTS)) if rng.random() < 0.2 else None
        amount = str(rng.choice(amounts))
        pending = round(rng.uniform(8.0, 20.0), 1)
        if faults and provider != "sandbox":
            fault = chosen
        elif faults and sandbox_fault is not None:
            fault, amount = sandbox_fault, amount + SANDBOX_FAULTS[sandbox_fault]
        rewards.append(
            Reward(
                index=index,
                requester=requesters[index % len(requesters)],
                recipient=rng.choice(RECIPIENTS),
                approver=rng.choice(APPROVERS),
                provider=provider,
                card=card,
                amount=amount,
                fault=fault,
                pending=pending if fault == "pending for long" else 0.0,
                pause=round(rng.uniform(0.5, 4.0), 1),
            )
        )
    return rewards


def chaos_workspace(fleet: Fleet) -> Workspace:
    ws = build_workspace()
    requesters = fleet.requesters()
    for user in (*requesters, *RECIPIENTS):
        if user not in ws.users:
            name = user.removeprefix("U0").lower()
            ws.add_user(user, name=name, real_name=f"Chaos {name}")
    ws.add_channel(CHANNEL, name="chaos", members=[*requesters, *RECIPIENTS, *APPROVERS])
    return ws


_UNSETTLED = "status NOT IN ('fulfilled', 'needs_review', 'failed')"
# What a failure shows of the database: (title, SQL).
_FINDINGS = (
    (
        "unsettled requests",
        "SELECT id, status, provider, provider_order_id, delivery_started_at, failure_reason, "
        f"created_at, updated_at FROM reward_requests WHERE {_UNSETTLED} ORDER BY id",
    ),
    ("open jobs", "SELECT * FROM jobs WHERE done_at IS NULL ORDER BY id"),
    (
        "finished jobs of the unsettled requests",
        "SELECT * FROM jobs WHERE done_at IS NOT NULL AND request_id IN "
        f"(SELECT id FROM reward_requests WHERE {_UNSETTLED}) ORDER BY id",
    ),
    (
        "events of the unsettled requests",
        "SELECT request_id, kind, from_status, to_status, actor, at FROM events WHERE request_id "
        f"IN (SELECT id FROM reward_requests WHERE {_UNSETTLED}) ORDER BY request_id, id",
    ),
)


class Database:
    """Looks at the bots' database from outside, on connections of its own (the emulator and
    the fakes share this event loop and keep answering while a read waits)."""

    def __init__(self, reader: SqlReader) -> None:
        self.reader = reader

    async def ids_with_message(self, message: str) -> list[int]:
        sql = "SELECT id FROM reward_requests WHERE message = :message"
        return [int(row["id"]) for row in await self.reader.rows(sql, message=message)]

    async def status(self, request_id: int) -> str:
        sql = "SELECT status FROM reward_requests WHERE id = :id"
        [row] = await self.reader.rows(sql, id=request_id)
        return str(row["status"])

    async def requests(self) -> dict[int, tuple[str, str, str]]:
        """id -> (status, provider, message)."""
        rows = await self.reader.rows("SELECT id, status, provider, message FROM reward_requests")
        return {
            int(r["id"]): (str(r["status"]), str(r["provider"]), str(r["message"])) for r in rows
        }

    async def unfinished(self) -> str:
        """The unsettled requests, every open job, and the unsettled requests' finished jobs
        and events, as rows of text (for a failure)."""
        lines = [f"database, read at {datetime.now(UTC).isoformat()} (true time):"]
        for title, sql in _FINDINGS:
            try:
                rows = await self.reader.rows(sql)
            except SQLAlchemyError as exc:
                lines.append(f"{title}: unreadable ({exc})")
                continue
            lines.append(f"{title}:")
            lines += [f"  {row}" for row in rows]
        return "\n".join(lines)

    async def open_fulfil_jobs(self) -> int:
        sql = "SELECT COUNT(*) AS jobs FROM jobs WHERE kind = 'fulfil' AND done_at IS NULL"
        [row] = await self.reader.rows(sql)
        return int(row["jobs"])


@dataclass
class Run:
    """One chaos run: its seed, the processes, the fakes, and what happened when."""

    seed: int
    emulator: SlackEmulator
    bots: list[BotProcess]
    offset_files: list[Path]
    giftronaut: GiftronautState
    ugiftme: UGiftMeState
    db: Database
    started: float = field(default_factory=time.monotonic)
    events: list[str] = field(default_factory=list)
    kills: int = 0

    def note(self, what: str) -> None:
        self.events.append(f"{time.monotonic() - self.started:6.1f}s {what}")

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    # -- faults ---------------------------------------------------------------------------

    def arm(self, reward: Reward) -> None:
        """Arm the reward's fault at its vendor, just before its approval (whichever order
        reaches the vendor next gets it; the sandbox's are in the amount)."""
        if reward.fault is None or reward.provider == "sandbox":
            return
        self.note(f"arm {reward.provider}: {reward.fault} (reward {reward.index})")
        if reward.provider == "giftronaut":
            state = self.giftronaut
            if reward.fault.startswith("drop after create"):
                state.drop_next_after_processing()
            if reward.fault.startswith("500 after create"):
                state.fail_next_with(500, "INTERNAL_ERROR", route="create", after_processing=True)
            if reward.fault.endswith("401 on the replay"):
                # Giftronaut's client signs in again after a 401: twice makes it stick.
                state.fail_next_with(401, "UNAUTHORIZED", route="create", replay_only=True, times=2)
            if reward.fault.endswith("403 on the replay"):
                state.fail_next_with(403, "INSUFFICIENT_SCOPE", route="create", replay_only=True)
            if reward.fault == "pending for long":
                state.delay_next_completion(reward.pending)
            if reward.fault == "401 on create":
                state.fail_next_with(401, "UNAUTHORIZED", route="create", times=2)
            if reward.fault == "403 on create":
                state.fail_next_with(403, "INSUFFICIENT_SCOPE", route="create")
        else:
            fake = self.ugiftme
            if reward.fault.startswith("drop after create"):
                fake.drop_next_after_processing("create")
            if reward.fault.startswith("500 after create"):
                fake.fail_next_with(500, {"error": "Internal error"}, after_processing=True)
            if reward.fault.endswith("401 on the replay"):
                fake.fail_next_with(
                    401,
                    {"error": "Invalid API key", "reason": "Key not recognised"},
                    replay_only=True,
                )
            if reward.fault.endswith("403 on the replay"):
                fake.fail_next_with(403, {"error": "Forbidden"}, replay_only=True)
            if reward.fault == "pending for long":
                fake.delay_next_completion(reward.pending)
            if reward.fault == "401 on create":
                fake.fail_next_with(401, {"error": "Invalid API key", "reason": "Key revoked"})
            if reward.fault == "403 on create":
                fake.fail_next_with(403, {"error": "IP address not allowed"})

    # -- kills and clock steps ------------------------------------------------------------

    async def kill_and_restart(self, stop: asyncio.Event) -> None:
        """SIGKILL a random process at random moments and bring it back after a random pause;
        only one is ever down, so the balancer always has somewhere to send Slack's requests."""
        rng = random.Random(f"{self.seed}-kills")
        while not await _stopped(stop, rng.uniform(1.0, 4.0)):
            which = rng.randrange(len(self.bots))
            down_for = rng.uniform(0.2, 2.5)
            self.kills += 1
            self.note(f"SIGKILL bot {which}, down for {down_for:.1f}s")
            await self.bots[which].kill()
            await asyncio.sleep(down_for)
            await self.bots[which].start()
            self.note(f"bot {which} is back")

    async def step_clocks(self, stop: asyncio.Event) -> None:
        """Step one process's clock forward by minutes, then back behind the true time, then
        to the true time, at random moments."""
        rng = random.Random(f"{self.seed}-clock")
        which = rng.randrange(len(self.bots))
        steps = [rng.randint(90, 300), -rng.randint(60, 240), 0]
        for offset in steps:
            if await _stopped(stop, rng.uniform(3.0, 12.0)):
                return
            self.note(f"bot {which}'s clock is now {offset:+d}s off")
            self.set_clock(which, offset)

    def set_clock(self, which: int, offset: float) -> None:
        path = self.offset_files[which]
        temporary = path.with_suffix(".new")
        temporary.write_text(f"{offset:g}")
        os.replace(temporary, path)  # the bot never reads a half-written file

    async def all_up_on_true_time(self) -> None:
        for which, bot in enumerate(self.bots):
            self.set_clock(which, 0)
            if not bot.running:
                await bot.start()

    # -- driving Slack --------------------------------------------------------------------

    async def request(self, reward: Reward) -> list[int]:
        """/reward → fill in → submit, until the request is stored (a process may die under
        any step: the user just tries again). The ids stored with the reward's message."""
        ws, driver = self.emulator.workspace, self.emulator.driver
        message = reward.message(self.seed)
        values = {
            "recipient": reward.recipient,
            "card": reward.card,
            "amount": reward.amount,
            "message": message,
        }
        for _ in range(10):
            if ids := await self.db.ids_with_message(message):
                return ids
            before = ws.current_view(reward.requester)
            with contextlib.suppress(aiohttp.ClientError):
                await driver.slash_command(reward.requester, CHANNEL)
            view = await poll(functools.partial(_new_reward_modal, ws, reward.requester, before), 5)
            if view is None:
                continue
            for _ in range(3):
                try:
                    reply = await driver.submit_view(reward.requester, values, view["id"])
                except aiohttp.ClientError:
                    reply = None
                except EmulatorError:
                    break  # the modal is gone
                if reply is not None and reply.responded and reply.json.get("errors"):
                    raise AssertionError(
                        f"chaos seed {self.seed}: the bot refused reward {reward.index}'s "
                        f"form: {reply.json['errors']}"
                    )
                ids = await poll(lambda: self.db.ids_with_message(message), 5, DATABASE_POLL)
                if ids:
                    return list(ids)
        raise AssertionError(f"chaos seed {self.seed}: reward {reward.index} was never stored")

    async def approve(self, request_id: int, approver: str) -> bool:
        """Click Approve on the request's card until it is decided; False if no card came."""
        ws, driver = self.emulator.workspace, self.emulator.driver
        for _ in range(8):
            if await self.db.status(request_id) != "pending_approval":
                return True
            card = await poll(lambda: _approval_card(ws.dm_messages(approver), request_id), 10)
            if card is None:
                return False
            with contextlib.suppress(aiohttp.ClientError, EmulatorError):
                await driver.click_button(approver, card.channel, card.ts, APPROVE_ACTION)

            async def decided() -> bool:
                return await self.db.status(request_id) != "pending_approval"

            await poll(decided, 4, DATABASE_POLL)
        return await self.db.status(request_id) != "pending_approval"

    async def reward(self, reward: Reward) -> None:
        for request_id in await self.request(reward):
            self.arm(reward)
            if not await self.approve(request_id, reward.approver):
                self.note(f"no approval card for #{request_id} (reward {reward.index}) yet")

    async def drive(self, rewards: list[Reward]) -> None:
        """Each requester works through their rewards in turn; the requesters in parallel."""

        async def one_requester(mine: list[Reward]) -> None:
            for reward in mine:
                await asyncio.sleep(reward.pause)
                await self.reward(reward)

        requesters = dict.fromkeys(reward.requester for reward in rewards)
        await asyncio.gather(
            *(one_requester([r for r in rewards if r.requester == who]) for who in requesters)
        )

    async def settle(self, deadline: float) -> dict[int, tuple[str, str, str]]:
        """Wait until every request has settled and no order is being worked on (approving
        any request still undecided); the requests as they are then, settled or not."""
        last_sweep = 0.0
        while True:
            requests = await self.db.requests()
            undecided = [i for i, (s, _, _) in requests.items() if s == "pending_approval"]
            if undecided and time.monotonic() - last_sweep > 5:
                last_sweep = time.monotonic()
                for request_id in undecided:
                    self.note(f"approving #{request_id}, still undecided")
                    await self.approve(request_id, APPROVERS[0])
                continue
            done = all(status in SETTLED for status, _, _ in requests.values())
            if done and await self.db.open_fulfil_jobs() == 0:
                self.note("every request has settled")
                await asyncio.sleep(AFTER_SETTLED)
                return await self.db.requests()
            if time.monotonic() >= deadline:
                self.note("gave up waiting for the requests to settle")
                return requests
            await asyncio.sleep(0.5)

    async def through_chaos(
        self, rewards: list[Reward], chaos_kinds: frozenset[str]
    ) -> dict[int, tuple[str, str, str]]:
        """Start the fleet, drive the rewards while the chaos goes on, stop it, and wait for
        the requests to settle on the true time; the requests then."""
        for bot in self.bots:
            await bot.start()  # one at a time: a socket process waits for its own connection
        self.note(f"all {len(self.bots)} bots are up")
        stop = asyncio.Event()
        chaos = [
            asyncio.create_task(chaos_task(stop))
            for kind, chaos_task in (("kills", self.kill_and_restart), ("clock", self.step_clocks))
            if kind in chaos_kinds
        ]
        try:
            await self.drive(rewards)
            self.note("every reward was requested and approved")
            if chaos:
                await asyncio.sleep(max(0.0, CHAOS_AT_LEAST - self.elapsed()))
        finally:
            stop.set()
            await asyncio.gather(*chaos)
        self.note(f"chaos over ({self.kills} kills)")
        await self.all_up_on_true_time()
        return await self.settle(time.monotonic() + SETTLE_WITHIN)

    # -- what the vendors and Slack saw ---------------------------------------------------

    def deliveries(self) -> Counter[int]:
        """Delivery DMs (carrying the delivery metadata) per request id, over every user."""
        counted: Counter[int] = Counter()
        for user in self.emulator.workspace.users:
            counted.update(delivery_dms(self.emulator, user))
        return counted

    def orders(self, provider: str) -> Counter[int | None]:
        """Orders that exist at a vendor, per request id (from their idempotency keys)."""
        if provider == "giftronaut":
            return orders_by_request(self.giftronaut.created_keys)
        if provider == "ugiftme":
            return orders_by_request(self.ugiftme.created_keys)
        return Counter()

    def duplicate_keys(self) -> dict[str, int]:
        keys = Counter(
            [*self.giftronaut.created_keys, *(k for k in self.ugiftme.created_keys if k)]
        )
        return {key: n for key, n in keys.items() if n > 1}

    def log_tails(self) -> str:
        """The end of each bot's log, without the access log (every Slack request)."""
        tails = []
        for i, bot in enumerate(self.bots):
            lines = [
                line for line in bot.log_tail(400).splitlines() if "aiohttp.access" not in line
            ]
            tails.append(f"--- bot {i} log ({bot.log}), last lines ---")
            tails += lines[-80:]
        return "\n".join(tails)


def _chaos_kinds() -> frozenset[str]:
    """The kinds of chaos this run has: all, unless CHAOS_CALM or CHAOS_WITHOUT say less."""
    if os.environ.get(CALM_VARIABLE, "") not in ("", "0"):
        return frozenset()
    without = {k.strip() for k in os.environ.get(WITHOUT_VARIABLE, "").split(",") if k.strip()}
    unknown = without - CHAOS_KINDS
    if unknown:
        raise ValueError(f"{WITHOUT_VARIABLE}: {sorted(unknown)}? Use {sorted(CHAOS_KINDS)}")
    return CHAOS_KINDS - without


async def _stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless ``stop`` is set first; whether it is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


def _new_reward_modal(ws: Workspace, user: str, before: dict[str, Any] | None) -> Any:
    """The reward modal the user has open, if it is not ``before`` (a new one)."""
    view = ws.current_view(user)
    if view is None or view.get("callback_id") != REWARD_MODAL:
        return None
    if before is not None and view["id"] == before["id"]:
        return None
    return view


def _approval_card(messages: list[Message], request_id: int) -> Message | None:
    for message in reversed(messages):
        for block in message.blocks or []:
            for element in block.get("elements", []) or []:
                if element.get("action_id") == APPROVE_ACTION and element.get("value") == str(
                    request_id
                ):
                    return message
    return None


def problems_found(
    run: Run, requests: dict[int, tuple[str, str, str]], rewards: list[Reward]
) -> list[str]:
    """Every way the end state breaks exactly-once (empty: it holds)."""
    problems = []
    messages = {r.message(run.seed) for r in rewards}
    stored = {message for _, _, message in requests.values()}
    if stored != messages:
        problems.append(f"{len(messages - stored)} of the {len(messages)} rewards were not stored")
    deliveries = run.deliveries()
    orders = {provider: run.orders(provider) for provider in ("giftronaut", "ugiftme")}
    for provider, counted in orders.items():
        for request_id, n in sorted(counted.items(), key=str):
            if n > 1:
                problems.append(f"{provider} has {n} orders for request #{request_id}")
    for key, n in run.duplicate_keys().items():
        problems.append(f"{n} orders were created with the same key {key}")
    for request_id, n in sorted(deliveries.items()):
        if n > 1:
            problems.append(f"request #{request_id} got {n} delivery DMs")
    for request_id, (status, provider, _) in sorted(requests.items()):
        placed = orders[provider][request_id] if provider in orders else None
        delivered = deliveries[request_id]
        if status not in SETTLED:
            problems.append(f"request #{request_id} ({provider}) is still {status}")
        elif status == "fulfilled":
            if delivered != 1:
                problems.append(f"fulfilled #{request_id} ({provider}): {delivered} delivery DMs")
            if placed is not None and placed != 1:
                problems.append(f"fulfilled #{request_id} ({provider}): {placed} orders")
        elif status == "failed" and (placed or delivered):
            problems.append(
                f"failed #{request_id} ({provider}) has a card: {placed or 0} orders, "
                f"{delivered} delivery DMs"
            )
    return problems


@pytest.fixture
async def vendors() -> AsyncIterator[tuple[GiftronautState, str, UGiftMeState, str]]:
    giftronaut = GiftronautState(polls_to_complete=1)
    ugiftme = UGiftMeState(async_mode=True, async_steps=1)
    async with (
        serve(giftronaut_app(giftronaut)) as giftronaut_url,
        serve(ugiftme_app(ugiftme)) as ugiftme_url,
    ):
        yield giftronaut, giftronaut_url, ugiftme, ugiftme_url


@pytest.mark.sqlite_only("SQLite is one machine's file: the fleet one host would run on it")
@pytest.mark.parametrize("fleet", [ON_SQLITE], ids=str)
async def test_chaos_ends_with_one_order_and_one_delivery_per_reward(
    fleet: Fleet,
    database: str,
    tmp_path: Path,
    vendors: tuple[GiftronautState, str, UGiftMeState, str],
) -> None:
    await chaos_run(fleet, database, tmp_path, vendors)


@pytest.mark.postgresql_only("a fleet on several hosts shares one PostgreSQL server")
@pytest.mark.parametrize("fleet", ON_POSTGRESQL, ids=str)
async def test_chaos_on_postgresql_ends_with_one_order_and_one_delivery_per_reward(
    fleet: Fleet,
    database: str,
    tmp_path: Path,
    vendors: tuple[GiftronautState, str, UGiftMeState, str],
) -> None:
    await chaos_run(fleet, database, tmp_path, vendors)


async def chaos_run(
    fleet: Fleet,
    database: str,
    tmp_path: Path,
    vendors: tuple[GiftronautState, str, UGiftMeState, str],
) -> None:
    """Drive the fleet's rewards through the chaos, let them settle, and check exactly-once."""
    seed = int(os.environ.get(SEED_VARIABLE) or random.SystemRandom().randrange(1, 10**6))
    chaos_kinds = _chaos_kinds()
    print(f"chaos seed {seed} on {fleet} ({', '.join(sorted(chaos_kinds)) or 'calm'})")
    giftronaut, giftronaut_url, ugiftme, ugiftme_url = vendors
    rewards = plan_rewards(seed, "faults" in chaos_kinds, fleet)
    async with SlackEmulator(chaos_workspace(fleet)) as emulator:
        env = slack_env(emulator, database, APPROVERS) | {
            "REWARDBOT_PROVIDERS": "sandbox,giftronaut,ugiftme",
            # A killed process's claims expire soon, so another one takes them over.
            "REWARDBOT_JOB_LEASE_SECONDS": "2",
            # A delivery another run started is looked for after this (and 2 s) have passed.
            "REWARDBOT_SLACK_TIMEOUT_SECONDS": "5",
            # Forty rewards in a minute post far more in one channel than Slack would take
            # (about one message a second); the emulator takes them all, and Slack's pace is
            # not what this test is about.
            "REWARDBOT_SLACK_PACING": "false",
            "GIFTRONAUT_CLIENT_ID": GIFTRONAUT_ID,
            "GIFTRONAUT_CLIENT_SECRET": GIFTRONAUT_SECRET,
            "GIFTRONAUT_API_URL": giftronaut_url,
            "UGIFTME_API_KEY": ugiftme.api_key,
            "UGIFTME_API_URL": ugiftme_url,
        }
        offset_files = [tmp_path / f"clock-offset-{i}" for i in range(fleet.processes)]
        bots = [
            fleet.process(
                emulator, env | {OFFSET_FILE_VARIABLE: str(path)}, tmp_path / f"bot-{i}.log"
            )
            for i, path in enumerate(offset_files)
        ]
        fleet.route_slack(emulator, bots, seed)
        reader = SqlReader(database)
        run = Run(seed, emulator, bots, offset_files, giftronaut, ugiftme, Database(reader))
        try:
            async with asyncio.timeout(fleet.budget):
                requests = await run.through_chaos(rewards, chaos_kinds)
            problems = problems_found(run, requests, rewards)
            statuses = Counter(status for status, _, _ in requests.values())
            run.note(f"statuses {dict(statuses)} after {run.elapsed():.0f}s")
            assert not problems, (
                f"chaos seed {seed} on {fleet}: exactly-once broke ({len(problems)} problems; "
                f"replay with {SEED_VARIABLE}={seed}):\n" + "\n".join(problems)
            )
        except BaseException:
            print(
                f"chaos seed {seed} on {fleet}: FAILED after {run.elapsed():.0f}s; what happened:"
            )
            print("\n".join(run.events))
            with contextlib.suppress(Exception):
                print(await run.db.unfinished())
            print(run.log_tails())
            raise
        else:
            print("\n".join(run.events))
        finally:
            for bot in bots:
                await bot.kill()
            await reader.close()


# -- the balancer the chaos test relies on ---------------------------------------------------


async def test_the_balancer_spreads_requests_and_skips_a_bot_that_is_down() -> None:
    hits: list[int] = []

    def receiver(number: int) -> web.Application:
        async def handle(_: web.Request) -> web.Response:
            hits.append(number)
            return web.Response()

        app = web.Application()
        app.router.add_post("/slack/events", handle)
        return app

    down = f"http://127.0.0.1:{free_port()}/slack/events"  # nobody listens there
    async with (
        SlackEmulator(build_workspace()) as emulator,
        serve(receiver(1)) as first,
        serve(receiver(2)) as second,
    ):
        emulator.set_request_urls(
            [f"{first}/slack/events", down, f"{second}/slack/events"], rng=random.Random(7)
        )
        for _ in range(20):
            reply = await emulator.driver.slash_command(MAYA, "C0TEAMWINS")
            assert reply.responded
        assert set(hits) == {1, 2} and len(hits) == 20

        emulator.set_request_urls([down])
        with pytest.raises(aiohttp.ClientConnectorError):
            await emulator.driver.slash_command(MAYA, "C0TEAMWINS")
