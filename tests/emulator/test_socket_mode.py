"""A real Bolt app over Socket Mode: command -> ack -> views.open -> submission."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.offline.emulator import SlackEmulator
from tests.emulator.conftest import build_workspace

MODAL = {
    "type": "modal",
    "callback_id": "reward",
    "title": {"type": "plain_text", "text": "Reward"},
    "submit": {"type": "plain_text", "text": "Send"},
    "blocks": [
        {
            "type": "input",
            "block_id": "amount",
            "label": {"type": "plain_text", "text": "Amount"},
            "element": {"type": "number_input", "action_id": "n", "is_decimal_allowed": False},
        }
    ],
}


def build_app(emulator: SlackEmulator, submissions: list[dict[str, Any]]) -> AsyncApp:
    client = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
    app = AsyncApp(client=client)

    @app.command("/reward")
    async def on_reward(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=MODAL)

    @app.view("reward")
    async def on_submit(ack: Any, view: dict[str, Any], body: dict[str, Any]) -> None:
        submissions.append(view["state"]["values"])
        amount = view["state"]["values"]["amount"]["n"]["value"]
        if int(amount) > 100:
            await ack(response_action="errors", errors={"amount": "Too much"})
            return
        await ack()
        await app.client.chat_postMessage(channel=body["user"]["id"], text=f"Sent {amount}")

    return app


@pytest.fixture
async def socket_bot() -> AsyncIterator[tuple[SlackEmulator, list[dict[str, Any]]]]:
    submissions: list[dict[str, Any]] = []
    async with SlackEmulator(build_workspace(), socket_mode=True) as emulator:
        handler = AsyncSocketModeHandler(build_app(emulator, submissions), emulator.app_token)
        await handler.connect_async()  # type: ignore[no-untyped-call]
        try:
            yield emulator, submissions
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]


async def test_command_opens_modal_and_submission_round_trip(
    socket_bot: tuple[SlackEmulator, list[dict[str, Any]]],
) -> None:
    emulator, submissions = socket_bot
    reply = await emulator.driver.slash_command("U_ALICE", "C_GENERAL", text="")
    assert reply.responded and reply.body is None
    view = await emulator.wait_for(lambda: emulator.workspace.current_view("U_ALICE"))
    assert view["callback_id"] == "reward"
    assert emulator.calls_to("views.open")[0].ok

    await emulator.driver.submit_view("U_ALICE", {"amount": "500"})
    assert emulator.workspace.view_errors("U_ALICE") == {"amount": "Too much"}
    await emulator.driver.submit_view("U_ALICE", {"amount": "50"})
    assert emulator.workspace.current_view("U_ALICE") is None
    message = await emulator.wait_for_dm("U_ALICE", "Sent 50")
    assert message.user == emulator.workspace.bot_user_id
    assert submissions[-1] == {"amount": {"n": {"type": "number_input", "value": "50"}}}
