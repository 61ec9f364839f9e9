"""The driver over HTTP: signed requests, payload shapes, and applying the bot's answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiohttp import web
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.offline.emulator import EmulatorError, SlackEmulator, views
from bot.offline.emulator.blockkit import validate_view
from tests.emulator.conftest import build_workspace

Responder = Callable[[dict[str, Any]], web.Response]


class Receiver:
    """A tiny stand-in for the bot's Request URL that verifies Slack signatures."""

    def __init__(self, signing_secret: str) -> None:
        self.verifier = SignatureVerifier(signing_secret)
        self.received: list[dict[str, Any]] = []
        self.respond: Responder = lambda _body: web.Response()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.text()
        if not self.verifier.is_valid_request(raw, dict(request.headers)):
            return web.Response(status=401)
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        body = json.loads(form["payload"]) if "payload" in form else form
        self.received.append(body)
        return self.respond(body)


@pytest.fixture
async def bot() -> AsyncIterator[tuple[SlackEmulator, Receiver]]:
    emulator = SlackEmulator(build_workspace())
    receiver = Receiver(emulator.signing_secret)
    app = web.Application()
    app.router.add_post("/slack/events", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    emulator.set_request_url(receiver.url)
    async with emulator:
        yield emulator, receiver
    await runner.cleanup()


async def test_signed_slash_command_and_immediate_response(
    bot: tuple[SlackEmulator, Receiver],
) -> None:
    emulator, receiver = bot
    receiver.respond = lambda _b: web.json_response({"text": "Choose a reward"})
    reply = await emulator.driver.slash_command("U_ALICE", "C_GENERAL", text="@bob 10")
    assert reply.status == 200 and reply.json == {"text": "Choose a reward"}
    fields = receiver.received[0]
    assert fields["command"] == "/reward" and fields["text"] == "@bob 10"
    assert fields["user_id"] == "U_ALICE" and fields["channel_name"] == "general"
    assert fields["trigger_id"] and fields["response_url"].startswith(emulator.base_url)
    assert [e.text for e in emulator.workspace.ephemerals("U_ALICE")] == ["Choose a reward"]


async def test_bad_signature_is_rejected(bot: tuple[SlackEmulator, Receiver]) -> None:
    emulator, receiver = bot
    emulator.set_request_url(receiver.url)
    emulator.driver.delivery.signing_secret = "wrong"  # type: ignore[union-attr]
    assert (await emulator.driver.slash_command("U_ALICE", "C_GENERAL")).status == 401


def approval_blocks() -> list[dict[str, Any]]:
    return [
        {
            "type": "actions",
            "block_id": "decide",
            "elements": [
                {
                    "type": "button",
                    "action_id": "approve",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "value": "req-1",
                    "style": "primary",
                }
            ],
        }
    ]


async def test_click_button_payload_and_refusals(bot: tuple[SlackEmulator, Receiver]) -> None:
    emulator, receiver = bot
    ws = emulator.workspace
    msg = ws.post(ws.open_dm("U_BOB"), ws.bot_user_id, "Approve?", approval_blocks(), None)
    await emulator.driver.click_button("U_BOB", msg.channel, msg.ts, "approve")
    payload = receiver.received[-1]
    assert payload["type"] == "block_actions"
    assert payload["container"] == {
        "type": "message",
        "message_ts": msg.ts,
        "channel_id": msg.channel,
        "is_ephemeral": False,
    }
    assert payload["message"]["ts"] == msg.ts and payload["message"]["blocks"]
    action = payload["actions"][0]
    assert (action["action_id"], action["block_id"], action["value"]) == (
        "approve",
        "decide",
        "req-1",
    )
    await emulator.driver.click_button("U_BOB", msg.channel, msg.ts, "approve", "forged")
    assert receiver.received[-1]["actions"][0]["value"] == "forged"
    with pytest.raises(EmulatorError, match="no button 'reject'"):
        await emulator.driver.click_button("U_BOB", msg.channel, msg.ts, "reject")
    with pytest.raises(EmulatorError, match="cannot see"):
        await emulator.driver.click_button("U_ALICE", msg.channel, msg.ts, "approve")


async def test_response_url_replaces_original(bot: tuple[SlackEmulator, Receiver]) -> None:
    emulator, receiver = bot
    ws = emulator.workspace
    msg = ws.post(ws.channels["C_GENERAL"], ws.bot_user_id, "Approve?", approval_blocks(), None)
    await emulator.driver.click_button("U_BOB", "C_GENERAL", msg.ts, "approve")
    hook = AsyncWebhookClient(receiver.received[-1]["response_url"])
    assert (await hook.send(text="Approved by bob", replace_original=True)).status_code == 200
    assert ws.messages("C_GENERAL")[0].text == "Approved by bob"
    assert not ws.messages("C_GENERAL")[0].blocks


def reward_modal() -> dict[str, Any]:
    option = {"text": {"type": "plain_text", "text": "Amazon"}, "value": "amazon"}
    return {
        "type": "modal",
        "callback_id": "reward",
        "notify_on_close": True,
        "title": {"type": "plain_text", "text": "Reward"},
        "submit": {"type": "plain_text", "text": "Send"},
        "blocks": [
            {
                "type": "input",
                "block_id": "who",
                "label": {"type": "plain_text", "text": "Who"},
                "element": {"type": "users_select", "action_id": "user"},
            },
            {
                "type": "input",
                "block_id": "brand",
                "label": {"type": "plain_text", "text": "Brand"},
                "element": {"type": "static_select", "action_id": "b", "options": [option]},
            },
            {
                "type": "input",
                "block_id": "card",
                "label": {"type": "plain_text", "text": "Card"},
                "element": {"type": "external_select", "action_id": "card", "min_query_length": 1},
            },
            {
                "type": "input",
                "block_id": "note",
                "optional": True,
                "label": {"type": "plain_text", "text": "Note"},
                "element": {"type": "plain_text_input", "action_id": "text"},
            },
        ],
    }


async def open_modal(emulator: SlackEmulator, user_id: str) -> dict[str, Any]:
    return views.open_root(emulator.workspace, user_id, validate_view(reward_modal()))


async def test_submit_view_state_and_response_actions(
    bot: tuple[SlackEmulator, Receiver],
) -> None:
    emulator, receiver = bot
    view = await open_modal(emulator, "U_ALICE")
    card = {"text": {"type": "plain_text", "text": "$10 card"}, "value": "c10"}
    receiver.respond = lambda _b: web.json_response({"options": [card]})
    options = await emulator.driver.load_options("U_ALICE", "card", "1")
    assert options == {"options": [card]}
    suggestion = receiver.received[-1]
    assert suggestion["type"] == "block_suggestion" and suggestion["value"] == "1"
    assert suggestion["container"] == {"type": "view", "view_id": view["id"]}

    with pytest.raises(EmulatorError, match="not among offered"):
        await emulator.driver.submit_view("U_ALICE", {"who": "U_BOB", "brand": "ebay"})
    with pytest.raises(EmulatorError, match="required"):
        await emulator.driver.submit_view("U_ALICE", {"who": "U_BOB", "brand": "amazon"})

    errors = {"response_action": "errors", "errors": {"who": "Not yourself"}}
    receiver.respond = lambda _b: web.json_response(errors)
    values = {"who": "U_BOB", "brand": "amazon", "card": "c10"}
    await emulator.driver.submit_view("U_ALICE", values)
    submitted = receiver.received[-1]
    assert submitted["type"] == "view_submission" and submitted["response_urls"] == []
    assert submitted["view"]["state"]["values"] == {
        "who": {"user": {"type": "users_select", "selected_user": "U_BOB"}},
        "brand": {
            "b": {
                "type": "static_select",
                "selected_option": reward_modal()["blocks"][1]["element"]["options"][0],
            }
        },
        "card": {"card": {"type": "external_select", "selected_option": card}},
        "note": {"text": {"type": "plain_text_input", "value": None}},
    }
    assert emulator.workspace.view_errors("U_ALICE") == {"who": "Not yourself"}
    assert emulator.workspace.current_view("U_ALICE") is not None

    done = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Done"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Sent!"}}],
    }
    receiver.respond = lambda _b: web.json_response({"response_action": "update", "view": done})
    await emulator.driver.submit_view("U_ALICE", values)
    current = emulator.workspace.current_view("U_ALICE")
    assert current is not None and current["id"] == view["id"]
    assert current["title"]["text"] == "Done"
    assert emulator.workspace.view_errors("U_ALICE") == {}


async def test_empty_ack_closes_and_close_notifies(bot: tuple[SlackEmulator, Receiver]) -> None:
    emulator, receiver = bot
    await open_modal(emulator, "U_ALICE")
    card = {"text": {"type": "plain_text", "text": "$5"}, "value": "c5"}
    receiver.respond = lambda _b: web.json_response({"option_groups": [{"options": [card]}]})
    await emulator.driver.load_options("U_ALICE", "card", "x")
    receiver.respond = lambda _b: web.Response()
    values = {"who": "U_BOB", "brand": "amazon", "card": "c5"}
    assert (await emulator.driver.submit_view("U_ALICE", values)).responded
    assert emulator.workspace.current_view("U_ALICE") is None
    await open_modal(emulator, "U_BOB")
    reply = await emulator.driver.close_view("U_BOB")
    assert reply is not None and receiver.received[-1]["type"] == "view_closed"
    assert emulator.workspace.current_view("U_BOB") is None


async def test_forged_submission_bypasses_client_rules(
    bot: tuple[SlackEmulator, Receiver],
) -> None:
    emulator, receiver = bot
    await open_modal(emulator, "U_ALICE")
    await emulator.driver.submit_view("U_ALICE", {"brand": "ebay"}, strict=False)
    values = receiver.received[-1]["view"]["state"]["values"]
    assert values["brand"]["b"]["selected_option"]["value"] == "ebay"
    assert values["who"]["user"]["selected_user"] is None


async def test_a_dispatching_input_sends_block_actions_with_the_view(
    bot: tuple[SlackEmulator, Receiver],
) -> None:
    emulator, receiver = bot
    modal = reward_modal()
    modal["blocks"][0]["dispatch_action"] = True
    view = views.open_root(emulator.workspace, "U_ALICE", validate_view(modal))
    # Slack sends nothing when an input without dispatch_action changes.
    with pytest.raises(EmulatorError, match="no dispatch_action"):
        await emulator.driver.choose_in_view("U_ALICE", "note", "hi")
    assert not receiver.received

    reply = await emulator.driver.choose_in_view("U_ALICE", "who", "U_BOB")
    assert reply.responded
    [sent] = receiver.received
    assert sent["type"] == "block_actions"
    assert sent["container"] == {"type": "view", "view_id": view["id"]}
    [action] = sent["actions"]
    assert (action["block_id"], action["action_id"], action["type"]) == (
        "who",
        "user",
        "users_select",
    )
    assert action["selected_user"] == "U_BOB"
    assert sent["view"]["state"]["values"]["who"]["user"]["selected_user"] == "U_BOB"
    assert sent["view"]["hash"] == view["hash"]
    with pytest.raises(EmulatorError, match="no input block"):
        await emulator.driver.choose_in_view("U_ALICE", "nothing", "x")
