"""The emulator delivers only what Slack would deliver to an app with the given manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.offline.emulator.context import JSON
from bot.offline.emulator.delivery import BotReply
from bot.offline.emulator.errors import EmulatorError
from bot.offline.emulator.manifest import AppManifest, ManifestGate

REPOSITORY_MANIFEST = Path(__file__).parents[2] / "manifest.yml"


class Recorder:
    """A transport that records what reached the bot."""

    def __init__(self) -> None:
        self.delivered: list[JSON] = []

    async def slash_command(self, fields: dict[str, str]) -> BotReply:
        self.delivered.append(dict(fields))
        return BotReply(200)

    async def interactive(self, payload: JSON) -> BotReply:
        self.delivered.append(payload)
        return BotReply(200)

    async def event(self, envelope: JSON) -> BotReply:
        self.delivered.append(envelope)
        return BotReply(200)


URL = "https://bot.example/slack/events"


def _manifest(options_url: str | None = None, interactive: bool = True) -> AppManifest:
    return AppManifest.model_validate(
        {
            "features": {
                "app_home": {"home_tab_enabled": True},
                "slash_commands": [{"command": "/reward", "url": URL}],
            },
            "settings": {
                "event_subscriptions": {"request_url": URL, "bot_events": ["app_home_opened"]},
                "interactivity": {
                    "is_enabled": interactive,
                    "request_url": URL,
                    "message_menu_options_url": options_url,
                },
            },
        }
    )


SUGGESTION: JSON = {"type": "block_suggestion", "value": "ama"}


async def test_options_are_loaded_over_http_only_from_the_options_load_url() -> None:
    without = ManifestGate(Recorder(), _manifest(), over_http=True)
    with pytest.raises(EmulatorError, match="message_menu_options_url"):
        await without.interactive(SUGGESTION)
    # Over Socket Mode Slack sends it over the socket, URL or not.
    socket = Recorder()
    await ManifestGate(socket, _manifest(), over_http=False).interactive(SUGGESTION)
    with_url = Recorder()
    gate = ManifestGate(with_url, _manifest(URL), over_http=True)
    await gate.interactive(SUGGESTION)
    assert socket.delivered == with_url.delivered == [SUGGESTION]


async def test_undeclared_unsubscribed_or_disabled_deliveries_never_arrive() -> None:
    inner = Recorder()
    gate = ManifestGate(inner, _manifest(), over_http=True)
    with pytest.raises(EmulatorError, match="no such slash command"):
        await gate.slash_command({"command": "/bonus"})
    with pytest.raises(EmulatorError, match=r"no message events.*bot_events"):
        await gate.event({"event": {"type": "message"}})
    closed = ManifestGate(inner, _manifest(interactive=False), over_http=True)
    with pytest.raises(EmulatorError, match="does not enable interactivity"):
        await closed.interactive({"type": "block_actions"})
    assert inner.delivered == []
    await gate.slash_command({"command": "/reward"})
    await gate.event({"event": {"type": "app_home_opened", "tab": "home"}})
    assert len(inner.delivered) == 2


def test_the_repository_manifest_serves_a_large_catalog_over_http() -> None:
    manifest = AppManifest.load(REPOSITORY_MANIFEST)
    assert manifest.settings.interactivity.message_menu_options_url
    assert manifest.commands == {"/reward"}
    assert "app_home_opened" in manifest.settings.event_subscriptions.bot_events
