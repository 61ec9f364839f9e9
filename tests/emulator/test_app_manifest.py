"""The emulator delivers only what Slack would deliver to an app installed from its manifest.

Slack sends an app a slash command only if the manifest declares it, an event only if the app
subscribes to it, an interaction only if interactivity is on, and, over HTTP, each of them only
to the URL the manifest gives for that kind of request (an ``external_select`` search goes to
the *Options Load URL*, ``settings.interactivity.message_menu_options_url``). Over Socket Mode
everything comes over the socket and the URLs do not matter. A test that drives the emulator
into a delivery Slack would not make fails with ``EmulatorError``.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.offline.emulator import EmulatorError, SlackEmulator, views
from bot.offline.emulator.blockkit import validate_view
from bot.offline.emulator.manifest import AppManifest
from tests.emulator.conftest import build_workspace

ROOT = Path(__file__).resolve().parents[2]
CARD = {"text": {"type": "plain_text", "text": "$10 card"}, "value": "c10"}
MODAL = {
    "type": "modal",
    "callback_id": "reward",
    "notify_on_close": True,
    "title": {"type": "plain_text", "text": "Reward"},
    "submit": {"type": "plain_text", "text": "Send"},
    "blocks": [
        {
            "type": "input",
            "block_id": "card",
            "label": {"type": "plain_text", "text": "Card"},
            "element": {"type": "external_select", "action_id": "card", "min_query_length": 1},
        }
    ],
}
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


def repository_manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "manifest.yml").read_text())
    return loaded


def edited(**changes: Any) -> dict[str, Any]:
    """The repository's manifest with ``settings__interactivity__is_enabled=False``-style
    changes (``__`` separates keys; ``None`` removes the key)."""
    manifest = copy.deepcopy(repository_manifest())
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = manifest
        for key in parents:
            node = node[key]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return manifest


def build_app(emulator: SlackEmulator, received: list[str]) -> AsyncApp:
    """A Bolt app that answers everything the tests send and records what reached it."""
    client = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
    app = AsyncApp(client=client, signing_secret=emulator.signing_secret)

    @app.command("/reward")
    @app.command("/other")
    async def on_command(ack: Any, command: dict[str, Any]) -> None:
        received.append(command["command"])
        await ack()

    @app.options("card")
    async def on_search(ack: Any) -> None:
        received.append("block_suggestion")
        await ack(options=[CARD])

    @app.action("approve")
    async def on_click(ack: Any) -> None:
        received.append("block_actions")
        await ack()

    @app.view("reward")
    async def on_submit(ack: Any) -> None:
        received.append("view_submission")
        await ack()

    @app.view_closed("reward")
    async def on_close(ack: Any) -> None:
        received.append("view_closed")
        await ack()

    @app.event("app_home_opened")
    async def on_home(event: dict[str, Any]) -> None:
        received.append(f"app_home_opened:{event['tab']}")

    return app


@asynccontextmanager
async def running(
    manifest: Any, transport: str, received: list[str], path: str = "/slack/events"
) -> AsyncIterator[SlackEmulator]:
    """The emulator with ``manifest``, delivering to a Bolt app over ``transport``."""
    socket_mode = transport == "socket"
    given = None if manifest is None else AppManifest.model_validate(manifest)
    async with SlackEmulator(
        build_workspace(), manifest=given, socket_mode=socket_mode
    ) as emulator:
        app = build_app(emulator, received)
        if socket_mode:
            handler = AsyncSocketModeHandler(app, emulator.app_token)
            await handler.connect_async()  # type: ignore[no-untyped-call]
            try:
                yield emulator
            finally:
                await handler.close_async()  # type: ignore[no-untyped-call]
            return
        runner = web.AppRunner(app.web_app(path=path))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        emulator.set_request_url(f"http://127.0.0.1:{runner.addresses[0][1]}{path}")
        try:
            yield emulator
        finally:
            await runner.cleanup()


def open_modal(emulator: SlackEmulator, user_id: str = "U_ALICE") -> None:
    views.open_root(emulator.workspace, user_id, validate_view(copy.deepcopy(MODAL)))


def show_button(emulator: SlackEmulator) -> str:
    ws = emulator.workspace
    return ws.post(ws.channels["C_GENERAL"], ws.bot_user_id, "Approve?", [BUTTON], None).ts


@pytest.fixture(params=["http", "socket"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- the repository's manifest ----------------------------------------------------------------


async def test_the_repository_manifest_is_the_default() -> None:
    # Every emulator checks its deliveries, not only those a test remembered to give one.
    emulator = SlackEmulator(build_workspace())
    assert emulator.driver.manifest == AppManifest.load(ROOT / "manifest.yml")
    assert emulator.driver.manifest == AppManifest.model_validate(repository_manifest())


async def test_the_repository_manifest_receives_everything_the_bot_handles(transport: str) -> None:
    received: list[str] = []
    async with running(None, transport, received) as emulator:
        assert (await emulator.driver.slash_command("U_ALICE", "C_GENERAL")).responded
        open_modal(emulator)
        assert await emulator.driver.load_options("U_ALICE", "card", "1") == {"options": [CARD]}
        await emulator.driver.submit_view("U_ALICE", {"card": "c10"})
        await emulator.driver.click_button("U_BOB", "C_GENERAL", show_button(emulator), "approve")
        await emulator.driver.open_app_home("U_ALICE")
        await emulator.driver.open_app_home("U_ALICE", tab="messages")
        await emulator.wait_for(lambda: len(received) == 6)
    assert sorted(received) == [
        "/reward",
        "app_home_opened:home",
        "app_home_opened:messages",
        "block_actions",
        "block_suggestion",
        "view_submission",
    ]


# -- the Options Load URL (external_select) ---------------------------------------------------


async def test_without_an_options_load_url_slack_sends_no_search_over_http() -> None:
    received: list[str] = []
    manifest = edited(settings__interactivity__message_menu_options_url=None)
    async with running(manifest, "http", received) as emulator:
        open_modal(emulator)
        with pytest.raises(EmulatorError, match="message_menu_options_url"):
            await emulator.driver.load_options("U_ALICE", "card", "1")
    assert received == []


async def test_without_an_options_load_url_searches_still_arrive_over_socket_mode() -> None:
    received: list[str] = []
    manifest = edited(settings__interactivity__message_menu_options_url=None)
    async with running(manifest, "socket", received) as emulator:
        open_modal(emulator)
        assert await emulator.driver.load_options("U_ALICE", "card", "1") == {"options": [CARD]}
    assert received == ["block_suggestion"]


async def test_an_options_load_url_on_a_path_the_bot_does_not_serve_is_refused() -> None:
    # The host is replaced at install time; the path is what the bot must serve.
    received: list[str] = []
    manifest = edited(
        settings__interactivity__message_menu_options_url="https://rewardbot.example.com/options"
    )
    async with running(manifest, "http", received) as emulator:
        open_modal(emulator)
        with pytest.raises(EmulatorError, match="/options"):
            await emulator.driver.load_options("U_ALICE", "card", "1")
    assert received == []


# -- slash commands ---------------------------------------------------------------------------


async def test_a_command_the_manifest_does_not_declare_is_refused(transport: str) -> None:
    received: list[str] = []
    async with running(None, transport, received) as emulator:
        with pytest.raises(EmulatorError, match="/other"):
            await emulator.driver.slash_command("U_ALICE", "C_GENERAL", "/other")
    assert received == []


async def test_a_command_without_a_url_reaches_the_bot_only_over_socket_mode(
    transport: str,
) -> None:
    received: list[str] = []
    manifest = edited()
    del manifest["features"]["slash_commands"][0]["url"]
    async with running(manifest, transport, received) as emulator:
        if transport == "http":
            with pytest.raises(EmulatorError, match="url"):
                await emulator.driver.slash_command("U_ALICE", "C_GENERAL")
        else:
            assert (await emulator.driver.slash_command("U_ALICE", "C_GENERAL")).responded
    assert received == ([] if transport == "http" else ["/reward"])


# -- events -----------------------------------------------------------------------------------


async def test_an_event_the_app_does_not_subscribe_to_is_refused(transport: str) -> None:
    received: list[str] = []
    manifest = edited(settings__event_subscriptions__bot_events=["app_mention"])
    async with running(manifest, transport, received) as emulator:
        with pytest.raises(EmulatorError, match=r"app_home_opened.*bot_events"):
            await emulator.driver.open_app_home("U_ALICE")
    assert received == []


async def test_events_need_a_request_url_over_http_only(transport: str) -> None:
    received: list[str] = []
    manifest = edited(settings__event_subscriptions__request_url=None)
    async with running(manifest, transport, received) as emulator:
        if transport == "http":
            with pytest.raises(EmulatorError, match=r"event_subscriptions\.request_url"):
                await emulator.driver.open_app_home("U_ALICE")
        else:
            assert (await emulator.driver.open_app_home("U_ALICE")).responded
            await emulator.wait_for(lambda: received)
    assert received == ([] if transport == "http" else ["app_home_opened:home"])


async def test_a_disabled_app_home_tab_cannot_be_opened(transport: str) -> None:
    received: list[str] = []
    manifest = edited(
        features__app_home__home_tab_enabled=False, features__app_home__messages_tab_enabled=False
    )
    async with running(manifest, transport, received) as emulator:
        with pytest.raises(EmulatorError, match="home_tab_enabled"):
            await emulator.driver.open_app_home("U_ALICE")
        with pytest.raises(EmulatorError, match="messages_tab_enabled"):
            await emulator.driver.open_app_home("U_ALICE", tab="messages")
    assert received == []


# -- interactivity ----------------------------------------------------------------------------


async def test_without_interactivity_no_click_submission_or_search_is_sent(transport: str) -> None:
    received: list[str] = []
    manifest = edited(settings__interactivity={"is_enabled": False})
    async with running(manifest, transport, received) as emulator:
        ts = show_button(emulator)
        with pytest.raises(EmulatorError, match="interactivity"):
            await emulator.driver.click_button("U_BOB", "C_GENERAL", ts, "approve")
        open_modal(emulator)
        with pytest.raises(EmulatorError, match="interactivity"):
            await emulator.driver.load_options("U_ALICE", "card", "1")
        with pytest.raises(EmulatorError, match="interactivity"):
            await emulator.driver.submit_view("U_ALICE", {"card": "c10"}, strict=False)
        open_modal(emulator, "U_BOB")
        with pytest.raises(EmulatorError, match="interactivity"):
            await emulator.driver.close_view("U_BOB")
    assert received == []


async def test_interactions_need_a_request_url_over_http() -> None:
    received: list[str] = []
    manifest = edited(settings__interactivity__request_url=None)
    async with running(manifest, "http", received) as emulator:
        ts = show_button(emulator)
        with pytest.raises(EmulatorError, match=r"interactivity\.request_url"):
            await emulator.driver.click_button("U_BOB", "C_GENERAL", ts, "approve")
    assert received == []


async def test_a_bot_served_on_another_path_than_the_manifest_names_gets_nothing() -> None:
    received: list[str] = []
    async with running(None, "http", received, path="/elsewhere") as emulator:
        with pytest.raises(EmulatorError, match="/slack/events"):
            await emulator.driver.slash_command("U_ALICE", "C_GENERAL")
    assert received == []


# -- what is a manifest --------------------------------------------------------------------


def test_something_that_is_not_a_manifest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "manifest.yml"
    path.write_text("- not\n- a mapping\n")
    with pytest.raises(EmulatorError, match="not a Slack app manifest"):
        AppManifest.load(path)
    path.write_text("features:\n  slash_commands: [{description: no command}]\n")
    with pytest.raises(EmulatorError, match="not a Slack app manifest"):
        AppManifest.load(path)


def test_without_its_source_tree_the_emulator_has_no_manifest_to_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Installed from a wheel (rewardbot demo), the package has no manifest.yml beside it.
    monkeypatch.setattr(
        "bot.offline.emulator.manifest.REPOSITORY_MANIFEST", tmp_path / "manifest.yml"
    )
    assert AppManifest.repository() is None
    assert SlackEmulator(build_workspace()).driver.manifest is None
    assert "not checked" in caplog.text
