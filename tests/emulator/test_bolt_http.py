"""A real Bolt app over HTTP: Bolt verifies the emulator's signatures and parses its
payloads, and its ``respond()`` goes through the emulator's response_url."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.offline.emulator import SlackEmulator
from tests.emulator.conftest import build_workspace

BUTTON = {
    "type": "actions",
    "block_id": "decide",
    "elements": [
        {
            "type": "button",
            "action_id": "approve",
            "text": {"type": "plain_text", "text": "Approve"},
            "value": "req-1",
        }
    ],
}


def build_app(emulator: SlackEmulator) -> AsyncApp:
    client = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
    app = AsyncApp(client=client, signing_secret=emulator.signing_secret)

    @app.command("/reward")
    async def on_reward(ack: Any, command: dict[str, Any], client: AsyncWebClient) -> None:
        await ack(f"Rewarding {command['text']}")
        await client.chat_postMessage(channel="U_BOB", text="Approve?", blocks=[BUTTON])

    @app.action("approve")
    async def on_approve(ack: Any, action: dict[str, Any], respond: Any) -> None:
        await ack()
        await respond(text=f"Approved {action['value']}", replace_original=True)

    return app


@pytest.fixture
async def http_bot() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(build_workspace()) as emulator:
        runner = web.AppRunner(build_app(emulator).web_app())
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        emulator.set_request_url(f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events")
        try:
            yield emulator
        finally:
            await runner.cleanup()


async def test_command_then_approval_via_response_url(http_bot: SlackEmulator) -> None:
    emulator = http_bot
    reply = await emulator.driver.slash_command("U_ALICE", "C_GENERAL", text="bob")
    assert reply.status == 200
    assert [e.text for e in emulator.workspace.ephemerals("U_ALICE")] == ["Rewarding bob"]
    request = await emulator.wait_for_dm("U_BOB", "Approve")
    click = await emulator.driver.click_button("U_BOB", request.channel, request.ts, "approve")
    assert click.status == 200
    await emulator.wait_for(
        lambda: emulator.workspace.dm_messages("U_BOB")[0].text == "Approved req-1"
    )
    assert not emulator.workspace.dm_messages("U_BOB")[0].blocks


async def test_wait_for_timeout_lists_recent_messages(http_bot: SlackEmulator) -> None:
    await http_bot.driver.slash_command("U_ALICE", "C_GENERAL", text="bob")
    with pytest.raises(TimeoutError, match="Approve"):
        await http_bot.wait_for_dm("U_BOB", "Rejected", timeout=0.2)
