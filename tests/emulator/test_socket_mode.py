"""Socket Mode: a real Bolt app (command -> ack -> views.open -> submission), and several
connections of one app (slack_sdk's own client) sharing the envelopes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.offline.emulator import EmulatorError, SlackEmulator
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


# -- several connections, as an app running as several processes holds them ------------------


@dataclass
class AppConnection:
    """One Socket Mode connection of the app, held by slack_sdk's client as each process of the
    app holds its own: it acks every envelope (or, ``dies_unanswered``, closes instead, as a
    process killed before its ack) and keeps what it was sent."""

    client: SocketModeClient
    dies_unanswered: bool = False
    hellos: list[dict[str, Any]] = field(default_factory=list)
    envelopes: list[SocketModeRequest] = field(default_factory=list)

    async def on_message(self, _: Any, message: dict[str, Any], __: str | None) -> None:
        if message.get("type") == "hello":
            self.hellos.append(message)

    async def on_envelope(self, client: Any, request: SocketModeRequest) -> None:
        self.envelopes.append(request)
        if self.dies_unanswered:
            await client.close()
        else:
            await client.send_socket_mode_response(
                SocketModeResponse(envelope_id=request.envelope_id)
            )


@pytest.fixture
async def connect(
    emulator: SlackEmulator,
) -> AsyncIterator[Callable[..., Awaitable[AppConnection]]]:
    """Opens an app connection to the emulator and waits for its ``hello``; all are closed after
    the test."""
    emulator.use_socket_mode()
    opened: list[AppConnection] = []

    async def open_one(*, dies_unanswered: bool = False) -> AppConnection:
        web = AsyncWebClient(base_url=emulator.api_url)
        connection = AppConnection(
            SocketModeClient(emulator.app_token, web_client=web, auto_reconnect_enabled=False),
            dies_unanswered,
        )
        connection.client.message_listeners.append(connection.on_message)
        connection.client.socket_mode_request_listeners.append(connection.on_envelope)
        opened.append(connection)
        await connection.client.connect()  # type: ignore[no-untyped-call]
        await emulator.wait_for(lambda: connection.hellos, 5, "hello")
        return connection

    yield open_one
    for connection in opened:
        await connection.client.close()  # type: ignore[no-untyped-call]


async def test_envelopes_are_spread_over_every_connection_and_hello_counts_them(
    emulator: SlackEmulator, connect: Callable[..., Awaitable[AppConnection]]
) -> None:
    connections = [await connect() for _ in range(3)]
    assert [c.hellos[0]["num_connections"] for c in connections] == [1, 2, 3]
    assert emulator.socket.connection_count == 3

    for _ in range(12):
        assert (await emulator.driver.slash_command("U_ALICE", "C_GENERAL")).responded

    received = [len(c.envelopes) for c in connections]
    assert sum(received) == 12 and all(received), received
    numbers = emulator.socket.connection_numbers
    assert [emulator.socket.answered[n] for n in numbers] == received


async def test_a_closed_connection_gets_nothing_more_and_is_no_longer_counted(
    emulator: SlackEmulator, connect: Callable[..., Awaitable[AppConnection]]
) -> None:
    first, second, third = [await connect() for _ in range(3)]
    for _ in range(3):
        await emulator.driver.slash_command("U_ALICE", "C_GENERAL")
    closed_number = emulator.socket.connection_numbers[1]

    await second.client.close()  # type: ignore[no-untyped-call]
    await emulator.wait_for(lambda: emulator.socket.connection_count == 2, 5, "the close")
    before = len(second.envelopes)
    for _ in range(8):
        assert (await emulator.driver.slash_command("U_ALICE", "C_GENERAL")).responded
    assert len(second.envelopes) == before
    assert closed_number not in emulator.socket.connection_numbers
    assert len(first.envelopes) + len(third.envelopes) + before == 11
    assert len(first.envelopes) > 1 and len(third.envelopes) > 1

    fourth = await connect()
    assert fourth.hellos[0]["num_connections"] == 3
    assert emulator.socket.connection_count == 3


async def test_an_envelope_whose_connection_drops_unanswered_is_no_ack_at_once(
    emulator: SlackEmulator, connect: Callable[..., Awaitable[AppConnection]]
) -> None:
    dying = await connect(dies_unanswered=True)  # first in turn
    alive = await connect()
    started = asyncio.get_running_loop().time()
    reply = await emulator.driver.open_app_home("U_ALICE")
    assert not reply.responded
    assert asyncio.get_running_loop().time() - started < emulator.ack_timeout / 2
    await emulator.wait_for(lambda: emulator.socket.connection_count == 1, 5, "the close")
    (lost,) = dying.envelopes
    assert (lost.retry_attempt, lost.retry_reason) == (0, "")

    # Slack retries an event it got no ack for, on a live connection.
    retry = await emulator.driver.redeliver_last(1)
    assert retry.responded
    (retried,) = alive.envelopes
    assert retried.type == "events_api" and retried.payload == lost.payload
    assert (retried.retry_attempt, retried.retry_reason) == (1, "timeout")
    assert retried.envelope_id != lost.envelope_id


async def test_an_interactive_payload_lost_with_its_connection_is_not_retried(
    emulator: SlackEmulator, connect: Callable[..., Awaitable[AppConnection]]
) -> None:
    await connect(dies_unanswered=True)
    alive = await connect()
    reply = await emulator.driver.slash_command("U_ALICE", "C_GENERAL")
    assert not reply.responded  # the user sees an error and may try again
    with pytest.raises(EmulatorError, match="retries only Events API"):
        await emulator.driver.redeliver_last(1)
    assert not alive.envelopes
