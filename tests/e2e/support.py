"""Shared end-to-end helpers: the real ``rewardbot serve`` as a subprocess against the Slack
emulator (for the tests that kill it or check how it starts and stops), provider adapters
pointed at the vendor fakes, and the bot with only Giftronaut enabled."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiohttp
import httpx
from aiohttp import web
from pydantic import SecretStr

from bot.offline.emulator import SlackEmulator
from bot.offline.emulator.workspace import Message
from bot.offline.local import running_bot
from bot.server import SLACK_PATH
from bot.slack.ids import CONFIRM_EMAIL_ACTION
from providers.cardpluspay import CardPlusPayProvider
from providers.giftronaut import GiftronautProvider
from providers.http import RetryPolicy
from providers.sandbox import SandboxProvider
from tests.fakes import serve
from tests.fakes.cardpluspay import API_KEY as CARDPLUSPAY_API_KEY
from tests.fakes.cardpluspay import CardPlusPayState
from tests.fakes.cardpluspay import app as cardpluspay_app
from tests.fakes.giftronaut import CLIENT_ID as GIFTRONAUT_CLIENT_ID
from tests.fakes.giftronaut import CLIENT_SECRET as GIFTRONAUT_CLIENT_SECRET
from tests.fakes.giftronaut import GiftronautState
from tests.fakes.giftronaut import app as giftronaut_app
from tests.slack_stack import APPROVERS, JANE, Stack


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
                raise AssertionError(f"rewardbot serve exited with {process.returncode}")
            try:
                async with session.get(
                    f"http://127.0.0.1:{port}/healthz", timeout=aiohttp.ClientTimeout(total=2)
                ) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientConnectionError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("rewardbot serve never became healthy")


def slack_env(
    emulator: SlackEmulator, database: Path, approvers: tuple[str, ...]
) -> dict[str, str]:
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
    Output of every run is appended to ``log``."""

    emulator: SlackEmulator
    env: dict[str, str]
    port: int
    log: Path
    process: asyncio.subprocess.Process | None = None
    routes_slack: bool = True

    @property
    def request_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{SLACK_PATH}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                env=self.env,
                stdout=log,
                stderr=log,
            )
        await wait_healthy(self.port, process=self.process)
        if self.routes_slack:
            self.emulator.set_request_url(self.request_url)

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


Middleware = Callable[
    [web.Request, Callable[[web.Request], Awaitable[web.StreamResponse]]],
    Awaitable[web.StreamResponse],
]


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
async def giftronaut_stack(
    emulator: SlackEmulator, database: Path, state: GiftronautState
) -> AsyncIterator[Stack]:
    """The bot with only Giftronaut enabled, pointed at a fake Giftronaut holding ``state``."""
    async with (
        giftronaut_adapter(state) as giftronaut,
        running_bot(
            emulator, database=database, approvers=APPROVERS, providers={"giftronaut": giftronaut}
        ) as runtime,
    ):
        yield Stack(emulator, runtime, SandboxProvider())


def step_wall_clock(offset_file: Path, seconds: float) -> None:
    """Step the bot's wall clock to ``seconds`` from now (``step_clock``'s file)."""
    offset_file.write_text(str(seconds))


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
