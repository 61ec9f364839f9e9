"""Fixtures: a populated workspace, a running emulator and a Web API client on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.offline.emulator import SlackEmulator, Workspace


def build_workspace() -> Workspace:
    """Alice and Bob in #general (bot invited), #random (bot not invited), #secret."""
    ws = Workspace()
    ws.add_user("U_ALICE", name="alice", real_name="Alice Doe", tz="Europe/Paris", tz_offset=3600)
    ws.add_user("U_BOB", name="bob")
    ws.add_user("U_CAROL", name="carol")
    ws.add_channel("C_GENERAL", name="general", members=["U_ALICE", "U_BOB"])
    ws.add_channel("C_RANDOM", name="random", members=["U_ALICE"], bot_member=False)
    ws.add_channel(
        "C_SECRET", name="secret", members=["U_ALICE"], is_private=True, bot_member=False
    )
    return ws


@pytest.fixture
async def emulator() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(build_workspace(), trigger_ttl=0.5) as emu:
        yield emu


@pytest.fixture
async def client(emulator: SlackEmulator) -> AsyncIterator[AsyncWebClient]:
    web = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
    yield web
    if web.session is not None:
        await web.session.close()
