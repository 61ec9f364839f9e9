"""The real bot (HTTP or Socket Mode) against the Slack emulator and the sandbox provider.

The workspace, the :class:`Stack` helpers and the fixtures of every test that runs the whole
bot: the end-to-end tier (``tests/e2e``) and the providers' own flows (``tests/providers``).
Loaded as a plugin by ``tests/conftest.py``, so both tiers share one copy.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.domain import Status
from bot.offline.emulator import SlackEmulator, Workspace
from bot.offline.emulator.manifest import AppManifest
from bot.offline.emulator.workspace import Message
from bot.offline.local import running_bot
from bot.runtime import Runtime
from bot.slack.ids import APPROVE_ACTION
from providers.sandbox import SandboxProvider

MAYA, ARJUN, LIN, JANE, OMAR = "U0MAYA", "U0ARJUN", "U0LIN", "U0JANE", "U0OMAR"
HELPER_BOT, GONE = "U0HELPERBOT", "U0GONE"
TEAM, QUIET = "C0TEAMWINS", "C0QUIET"
APPROVERS = (ARJUN, LIN)
# How the private confirmation of a submitted request begins.
CONFIRMATION = ":white_check_mark: Your reward #"


def build_workspace() -> Workspace:
    ws = Workspace()
    ws.add_user(MAYA, name="maya", real_name="Maya Manager")
    ws.add_user(ARJUN, name="arjun", real_name="Arjun Approver")
    ws.add_user(LIN, name="lin", real_name="Lin Approver")
    ws.add_user(JANE, name="jane", real_name="Jane Doe")
    ws.add_user(OMAR, name="omar", real_name="Omar Outsider")
    ws.add_user(HELPER_BOT, name="helperbot", is_bot=True)
    ws.add_user(GONE, name="gone", deleted=True)
    ws.add_user("USLACKBOT", name="slackbot")  # users.info reports Slackbot with is_bot false
    members = [MAYA, ARJUN, LIN, JANE, OMAR]
    ws.add_channel(TEAM, name="team-wins", members=members)
    ws.add_channel(QUIET, name="quiet", members=members, bot_member=False)
    return ws


@dataclass
class Stack:
    emulator: SlackEmulator
    runtime: Runtime
    sandbox: SandboxProvider

    @property
    def ws(self) -> Workspace:
        return self.emulator.workspace

    async def request_reward(
        self, values: dict[str, Any], *, requester: str = MAYA, channel: str = TEAM, text: str = ""
    ) -> None:
        """Type /reward and submit the modal with ``values`` (block_id → value)."""
        reply = await self.emulator.driver.slash_command(requester, channel, text=text)
        assert reply.responded, reply
        await self.emulator.wait_for(
            lambda: self.ws.current_view(requester), 5, "the reward modal to open"
        )
        await self.emulator.driver.submit_view(requester, values)

    async def request_and_approve(
        self, values: dict[str, Any] | None = None, *, approver: str = ARJUN
    ) -> None:
        """Maya requests a reward and ``approver`` approves it from their card."""
        await self.request_reward(values or GOOD_VALUES)
        await self.emulator.wait_for(lambda: self.ws.dm_messages(approver), 5, "the card")
        await self.click(approver, self.approval_card(approver), APPROVE_ACTION)

    async def status(self, request_id: int) -> Status:
        return (await self.runtime.store.get(request_id)).status

    async def wait_status(self, request_id: int, status: Status, seconds: float = 5) -> None:
        async def reached() -> bool:
            return await self.status(request_id) is status

        await self.emulator.wait_for(reached, seconds, f"#{request_id} to be {status}")

    def refusals(self, user: str) -> list[str]:
        """What ``user`` was told privately, other than confirmations of their own requests."""
        return [e.text for e in self.ws.ephemerals(user) if not e.text.startswith(CONFIRMATION)]

    def approval_card(self, approver: str) -> Message:
        cards = [
            m for m in self.ws.dm_messages(approver) if m.blocks and "asks you to approve" in m.text
        ]
        assert cards, f"no approval card for {approver}"
        return cards[-1]

    async def click(
        self, user: str, message: Message, action_id: str, value: str | None = None
    ) -> None:
        reply = await self.emulator.driver.click_button(
            user, message.channel, message.ts, action_id, value_override=value
        )
        assert reply.responded, reply
        await self.settled()

    async def settled(self) -> None:
        """Wait until the bot's listeners finished what the last request started: Slack was
        answered at the ack, and what follows (a modal, a stored decision) comes after it,
        as a person sees it come."""
        await self.emulator.wait_for(
            lambda: self.runtime.listeners.count == 0, 10, "the listeners to finish"
        )

    def everything_visible_outside(self, user: str) -> str:
        """All messages and ephemerals in the workspace except ``user``'s DM, as JSON text."""
        dm = self.ws.open_dm(user).id
        seen = []
        for channel in (
            TEAM,
            QUIET,
            *(self.ws.open_dm(u).id for u in (MAYA, ARJUN, LIN, OMAR, JANE)),
        ):
            if channel != dm:
                seen += [m.to_api() for m in self.ws.messages(channel)]
        for member in (MAYA, ARJUN, LIN, JANE, OMAR):
            seen += [{"text": e.text, "blocks": e.blocks} for e in self.ws.ephemerals(member)]
        return json.dumps(seen)


def redeem_urls(messages: Sequence[Message]) -> list[str]:
    """The redemption links on the messages' Redeem buttons."""
    return [
        str(element["url"])
        for message in messages
        for block in message.blocks or []
        for element in block.get("elements", [])
        if element.get("action_id") == "redeem"
    ]


GOOD_VALUES = {
    "recipient": JANE,
    "card": "sandbox:SBX-BOOKS-GBP",
    "amount": "25",
    "message": "For shipping the release",
}


@pytest.fixture(params=["http", "socket"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# Every end-to-end test is delivered only what Slack would deliver to an app installed from it.
MANIFEST = AppManifest.load(Path(__file__).parents[1] / "manifest.yml")


@pytest.fixture
async def emulator() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(build_workspace(), manifest=MANIFEST) as emu:
        yield emu


@pytest.fixture
def sandbox() -> SandboxProvider:
    return SandboxProvider(completion_delay=0.1)


@pytest.fixture
async def stack(
    emulator: SlackEmulator, database: str, sandbox: SandboxProvider
) -> AsyncIterator[Stack]:
    """The bot over signed HTTP."""
    async with sandbox_stack(emulator, database, sandbox) as started:
        yield started


@asynccontextmanager
async def sandbox_stack(
    emulator: SlackEmulator,
    database: str,
    sandbox: SandboxProvider,
    approvers: Sequence[str] = APPROVERS,
    policy: Path | None = None,
    slack_pacing: bool = True,
) -> AsyncIterator[Stack]:
    """The bot over signed HTTP with ``sandbox`` (or a subclass) as its only provider, and
    ``approvers`` or else the ``policy`` file as its approval policy."""
    async with running_bot(
        emulator,
        database=database,
        approvers=() if policy else approvers,
        policy=policy,
        providers={"sandbox": sandbox},
        slack_pacing=slack_pacing,
    ) as runtime:
        yield Stack(emulator, runtime, sandbox)


@pytest.fixture
def no_secrets_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level("DEBUG")
    yield caplog
    logged = "\n".join(r.getMessage() for r in caplog.get_records("call"))
    assert caplog.get_records("call"), "nothing was captured: this check would prove nothing"
    assert "sandbox.rewardbot.invalid/redeem" not in logged
