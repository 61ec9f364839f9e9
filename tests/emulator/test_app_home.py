"""App Home: views.publish, app_home_opened over the Events API, and Home tab buttons.

A real Bolt app is driven over both transports (signed HTTP and Socket Mode): it
publishes the Home tab when the user opens it, and handles buttons there, one of which
opens a modal with the click's trigger_id.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.offline.emulator import EmulatorError, SlackEmulator
from tests.emulator.conftest import build_workspace


def home(text: str = "Pending: 1", *, buttons: bool = True, **extra: Any) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if buttons:
        blocks.append(
            {
                "type": "actions",
                "block_id": "decide",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "home_approve",
                        "text": {"type": "plain_text", "text": "Approve"},
                        "value": "req-1",
                        "style": "primary",
                    },
                    {
                        "type": "button",
                        "action_id": "home_reject",
                        "text": {"type": "plain_text", "text": "Reject"},
                        "value": "req-1",
                    },
                ],
            }
        )
    view: dict[str, Any] = {"type": "home", "callback_id": "home", "blocks": blocks}
    view.update(extra)
    return view


REJECT_MODAL = {
    "type": "modal",
    "callback_id": "reject_reason",
    "title": {"type": "plain_text", "text": "Reject"},
    "submit": {"type": "plain_text", "text": "Reject"},
    "blocks": [
        {
            "type": "input",
            "block_id": "reason",
            "label": {"type": "plain_text", "text": "Reason"},
            "element": {"type": "plain_text_input", "action_id": "text"},
        }
    ],
}


async def error_of(coro: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as info:
        await coro
    return dict(info.value.response.data)


# -- views.publish -----------------------------------------------------------------


async def test_publish_stores_the_home_tab_and_keeps_its_id(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    ws = emulator.workspace
    assert ws.home_view("U_ALICE") is None
    resp = await client.views_publish(user_id="U_ALICE", view=home(private_metadata="m"))
    view = resp["view"]
    assert resp["ok"] and view["id"].startswith("V") and view["type"] == "home"
    assert view["root_view_id"] == view["id"] and view["previous_view_id"] is None
    assert view["submit"] is None and view["close"] is None and "title" not in view
    assert view["state"] == {"values": {}} and view["hash"]
    assert (view["callback_id"], view["private_metadata"], view["external_id"]) == (
        "home",
        "m",
        "",
    )
    assert (view["app_id"], view["bot_id"], view["team_id"]) == ("A0EMULATOR", "BBOT", ws.team_id)
    assert view["blocks"][0]["block_id"]  # Slack fills block_id in
    assert ws.home_view("U_ALICE") == view
    assert ws.home_view("U_BOB") is None

    stale = await error_of(client.views_publish(user_id="U_ALICE", hash="0.0", view=home("x")))
    assert stale["error"] == "hash_conflict"
    again = (await client.views_publish(user_id="U_ALICE", hash=view["hash"], view=home("Done")))[
        "view"
    ]
    assert again["id"] == view["id"] and again["hash"] != view["hash"]
    assert ws.home_view("U_ALICE") == again
    assert again["blocks"][0]["text"]["text"] == "Done"
    reused = await error_of(client.views_publish(user_id="U_ALICE", hash=view["hash"], view=home()))
    assert reused["error"] == "hash_conflict"


async def test_publish_accepts_the_view_as_a_json_string_in_a_form(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    resp = await client.api_call(
        "views.publish", data={"user_id": "U_BOB", "view": json.dumps(home("Hi"))}
    )
    assert resp["ok"] and resp["view"]["type"] == "home"
    published = emulator.workspace.home_view("U_BOB")
    assert published is not None and published["blocks"][0]["text"]["text"] == "Hi"


@pytest.mark.parametrize(
    "view",
    [
        pytest.param(REJECT_MODAL, id="modal"),
        pytest.param(home(submit={"type": "plain_text", "text": "Go"}), id="submit"),
        pytest.param(home(close={"type": "plain_text", "text": "No"}), id="close"),
        pytest.param(home(blocks=[{"type": "bogus"}]), id="bad-block"),
        pytest.param(home(blocks=[]), id="no-blocks"),
        pytest.param(home(blocks=[{"type": "divider"}] * 101), id="over-100-blocks"),
        pytest.param({"blocks": []}, id="no-type"),
    ],
)
async def test_publish_refuses_what_is_not_a_valid_home_view(
    emulator: SlackEmulator, client: AsyncWebClient, view: dict[str, Any]
) -> None:
    err = await error_of(client.views_publish(user_id="U_ALICE", view=view))
    assert err["error"] == "invalid_arguments"
    assert err["response_metadata"]["messages"]
    assert emulator.workspace.home_view("U_ALICE") is None


async def test_publish_refuses_unknown_or_missing_users(client: AsyncWebClient) -> None:
    # Slack documents this answer for a user_id it cannot publish to.
    unknown = await error_of(client.views_publish(user_id="U_NOPE", view=home()))
    assert unknown["error"] == "invalid_arguments"
    assert unknown["response_metadata"]["messages"] == ["invalid `user_id`"]
    missing = await error_of(client.api_call("views.publish", json={"view": home()}))
    assert missing["error"] == "invalid_arguments"
    no_view = await error_of(client.api_call("views.publish", json={"user_id": "U_ALICE"}))
    assert no_view["error"] == "invalid_arguments"


async def test_views_update_and_external_ids_on_home_tabs(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    ws = emulator.workspace
    alice = (await client.views_publish(user_id="U_ALICE", view=home(external_id="home-a")))["view"]
    taken = await error_of(client.views_publish(user_id="U_BOB", view=home(external_id="home-a")))
    assert taken["error"] == "duplicate_external_id"
    modal = dict(REJECT_MODAL, external_id="home-a")
    trigger = emulator.triggers.issue("U_BOB")
    taken_by_modal = await error_of(client.views_open(trigger_id=trigger, view=modal))
    assert taken_by_modal["error"] == "duplicate_external_id"

    updated = (
        await client.views_update(
            view_id=alice["id"], hash=alice["hash"], view=home("Updated", external_id="home-a")
        )
    )["view"]
    assert updated["id"] == alice["id"] and updated["type"] == "home"
    assert ws.home_view("U_ALICE") == updated
    by_external = await client.views_update(
        external_id="home-a", view=home("Again", external_id="home-a")
    )
    assert by_external["view"]["id"] == alice["id"]
    stale = await error_of(client.views_update(view_id=alice["id"], hash="0.0", view=home()))
    assert stale["error"] == "hash_conflict"
    as_modal = await error_of(client.views_update(view_id=alice["id"], view=REJECT_MODAL))
    assert as_modal["error"] == "invalid_arguments"
    assert ws.current_view("U_ALICE") is None  # a Home tab is not a modal


# -- app_home_opened and Home tab buttons through a real Bolt app ------------------


@dataclass
class Seen:
    """What the Bolt app received, for assertions on Slack's payload shapes."""

    events: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    envelopes: list[dict[str, Any]] = field(default_factory=list)


def build_app(emulator: SlackEmulator, seen: Seen) -> AsyncApp:
    client = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
    app = AsyncApp(client=client, signing_secret=emulator.signing_secret)

    @app.event("app_home_opened")
    async def on_home_opened(event: dict[str, Any], body: dict[str, Any]) -> None:
        seen.events.append(body)
        if event["tab"] == "home":
            opened = sum(1 for e in seen.events if e["event"]["user"] == event["user"])
            await client.views_publish(user_id=event["user"], view=home(f"Opened {opened}"))

    @app.action("home_approve")
    async def on_approve(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        seen.actions.append(body)
        view = body["view"]
        await client.views_publish(
            user_id=body["user"]["id"], hash=view["hash"], view=home("Approved", buttons=False)
        )

    @app.action("home_reject")
    async def on_reject(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        seen.actions.append(body)
        await client.views_open(trigger_id=body["trigger_id"], view=REJECT_MODAL)

    @app.view("reject_reason")
    async def on_reason(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        await ack()
        reason = view["state"]["values"]["reason"]["text"]["value"]
        await client.chat_postMessage(channel=body["user"]["id"], text=f"Rejected: {reason}")

    return app


@pytest.fixture(params=["http", "socket"])
async def home_bot(request: pytest.FixtureRequest) -> AsyncIterator[tuple[SlackEmulator, Seen]]:
    seen = Seen()
    socket_mode = request.param == "socket"
    async with SlackEmulator(build_workspace(), socket_mode=socket_mode) as emulator:
        app = build_app(emulator, seen)
        if socket_mode:
            handler = AsyncSocketModeHandler(app, emulator.app_token)

            async def record(_client: Any, message: dict[str, Any], _raw: str | None) -> None:
                seen.envelopes.append(message)

            handler.client.message_listeners.append(record)
            await handler.connect_async()  # type: ignore[no-untyped-call]
            try:
                yield emulator, seen
            finally:
                await handler.close_async()  # type: ignore[no-untyped-call]
        else:
            runner = web.AppRunner(app.web_app())
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            emulator.set_request_url(f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events")
            try:
                yield emulator, seen
            finally:
                await runner.cleanup()


def home_text(emulator: SlackEmulator, user_id: str) -> str | None:
    view = emulator.workspace.home_view(user_id)
    return None if view is None else str(view["blocks"][0]["text"]["text"])


async def test_opening_app_home_publishes_the_tab(home_bot: tuple[SlackEmulator, Seen]) -> None:
    emulator, seen = home_bot
    ws = emulator.workspace
    reply = await emulator.driver.open_app_home("U_ALICE")
    assert reply.status == 200 and reply.body is None  # Bolt acks events with an empty 200
    await emulator.wait_for(lambda: home_text(emulator, "U_ALICE") == "Opened 1")
    first = seen.events[0]
    assert first["type"] == "event_callback" and first["event_id"].startswith("Ev")
    assert (first["team_id"], first["api_app_id"]) == (ws.team_id, ws.app_id)
    assert first["token"] and isinstance(first["event_time"], int)
    event = first["event"]
    assert (event["type"], event["user"], event["tab"]) == ("app_home_opened", "U_ALICE", "home")
    assert event["channel"] == ws.open_dm("U_ALICE").id and event["event_ts"]
    assert "view" not in event  # nothing was published before this first visit

    await emulator.driver.open_app_home("U_ALICE")
    await emulator.wait_for(lambda: home_text(emulator, "U_ALICE") == "Opened 2")
    shown = seen.events[1]["event"]["view"]
    assert shown["type"] == "home" and shown["id"] == ws.home_view("U_ALICE")["id"]  # type: ignore[index]
    assert shown["blocks"][0]["text"]["text"] == "Opened 1"

    await emulator.driver.open_app_home("U_BOB", tab="messages")
    await emulator.wait_for(lambda: len(seen.events) == 3)
    assert seen.events[2]["event"]["tab"] == "messages"
    assert ws.home_view("U_BOB") is None
    if seen.envelopes:  # Socket Mode: events come in events_api envelopes
        envelope = next(e for e in seen.envelopes if e.get("type") == "events_api")
        assert envelope["payload"]["event"]["type"] == "app_home_opened"
        assert envelope["accepts_response_payload"] is False
        assert (envelope["retry_attempt"], envelope["retry_reason"]) == (0, "")


async def test_home_buttons_send_view_block_actions(home_bot: tuple[SlackEmulator, Seen]) -> None:
    emulator, seen = home_bot
    ws = emulator.workspace
    with pytest.raises(EmulatorError, match="never published"):
        await emulator.driver.click_home_button("U_ALICE", "home_approve")
    await emulator.driver.open_app_home("U_ALICE")
    published = await emulator.wait_for(lambda: ws.home_view("U_ALICE"))
    with pytest.raises(EmulatorError, match="no button 'home_cancel'"):
        await emulator.driver.click_home_button("U_ALICE", "home_cancel")
    with pytest.raises(EmulatorError, match="never published"):
        await emulator.driver.click_home_button("U_BOB", "home_approve")

    reply = await emulator.driver.click_home_button("U_ALICE", "home_approve")
    assert reply.responded
    await emulator.wait_for(lambda: home_text(emulator, "U_ALICE") == "Approved")
    payload = seen.actions[0]
    assert payload["type"] == "block_actions" and payload["trigger_id"]
    assert payload["container"] == {"type": "view", "view_id": published["id"]}
    assert payload["view"]["type"] == "home" and payload["view"]["id"] == published["id"]
    assert payload["view"]["hash"] == published["hash"]
    assert not {"channel", "message", "response_url"} & payload.keys()
    assert payload["user"]["id"] == "U_ALICE"
    action = payload["actions"][0]
    assert (action["action_id"], action["block_id"], action["value"], action["type"]) == (
        "home_approve",
        "decide",
        "req-1",
        "button",
    )
    assert ws.home_view("U_ALICE")["id"] == published["id"]  # type: ignore[index]
    with pytest.raises(EmulatorError, match="no button 'home_approve'"):
        await emulator.driver.click_home_button("U_ALICE", "home_approve")  # no longer shown


async def test_home_button_opens_a_modal_with_its_trigger(
    home_bot: tuple[SlackEmulator, Seen],
) -> None:
    emulator, seen = home_bot
    ws = emulator.workspace
    await emulator.driver.open_app_home("U_BOB")
    await emulator.wait_for(lambda: ws.home_view("U_BOB"))
    await emulator.driver.click_home_button("U_BOB", "home_reject", value_override="req-9")
    modal = await emulator.wait_for(lambda: ws.current_view("U_BOB"))
    assert modal["callback_id"] == "reject_reason"
    assert emulator.calls_to("views.open")[-1].ok
    assert seen.actions[0]["actions"][0]["value"] == "req-9"
    await emulator.driver.submit_view("U_BOB", {"reason": "over budget"})
    await emulator.wait_for_dm("U_BOB", "Rejected: over budget")
    assert ws.current_view("U_BOB") is None
    assert home_text(emulator, "U_BOB") == "Opened 1"  # the Home tab stays as it was


# -- the raw HTTP request -----------------------------------------------------------


async def test_events_are_signed_json_posts_and_can_be_retried() -> None:
    received: list[tuple[dict[str, str], str]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.text()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/slack/events", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
        async with SlackEmulator(build_workspace(), request_url=url) as emulator:
            verifier = SignatureVerifier(emulator.signing_secret)
            reply = await emulator.driver.open_app_home("U_ALICE")
            assert reply.status == 200 and reply.body is None
            await emulator.driver.redeliver_last(1)
    finally:
        await runner.cleanup()
    (headers, body), (retry_headers, retry_body) = received
    assert headers["Content-Type"] == "application/json"
    assert verifier.is_valid_request(body, headers)
    envelope = json.loads(body)
    assert envelope["type"] == "event_callback"
    assert envelope["event"]["type"] == "app_home_opened"
    assert retry_body == body and retry_headers["Content-Type"] == "application/json"
    assert retry_headers["X-Slack-Retry-Num"] == "1"
    assert verifier.is_valid_request(retry_body, retry_headers)
