"""The app's manifest as Slack reads it: what Slack delivers to an app configured with it.

Real Slack sends a slash command only if the manifest declares it, an event only if the app
subscribes to it, interactive payloads only with interactivity enabled, and (over HTTP) an
``external_select``'s ``block_suggestion`` only to the *Options Load URL*
(``settings.interactivity.message_menu_options_url``). :class:`ManifestGate` refuses, with
:class:`EmulatorError`, whatever the manifest would keep Slack from sending, so a test cannot
pass on a delivery that would never happen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from bot.emulator.context import JSON
from bot.emulator.delivery import BotReply, Delivery
from bot.emulator.errors import EmulatorError


class _Manifest(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Command(_Manifest):
    command: str


class _Features(_Manifest):
    slash_commands: tuple[_Command, ...] = ()


class _Events(_Manifest):
    bot_events: tuple[str, ...] = ()


class _Interactivity(_Manifest):
    is_enabled: bool = False
    message_menu_options_url: str | None = None


class _Settings(_Manifest):
    event_subscriptions: _Events = Field(default_factory=_Events)
    interactivity: _Interactivity = Field(default_factory=_Interactivity)
    socket_mode_enabled: bool = False


class AppManifest(_Manifest):
    """The parts of an app manifest that decide what Slack delivers to the app."""

    features: _Features = Field(default_factory=_Features)
    settings: _Settings = Field(default_factory=_Settings)

    @classmethod
    def load(cls, path: Path) -> AppManifest:
        data: Any = yaml.safe_load(path.read_text())
        return cls.model_validate(data)

    @property
    def commands(self) -> frozenset[str]:
        return frozenset(c.command for c in self.features.slash_commands)


class ManifestGate(Delivery):
    """A transport that delivers only what Slack would deliver to an app with ``manifest``."""

    def __init__(self, inner: Delivery, manifest: AppManifest, *, over_http: bool) -> None:
        self._inner = inner
        self._manifest = manifest
        self._over_http = over_http

    async def slash_command(self, fields: dict[str, str]) -> BotReply:
        if fields.get("command") not in self._manifest.commands:
            raise EmulatorError(f"the manifest declares no slash command {fields.get('command')}")
        return await self._inner.slash_command(fields)

    async def interactive(self, payload: JSON) -> BotReply:
        interactivity = self._manifest.settings.interactivity
        if not interactivity.is_enabled:
            raise EmulatorError("the manifest does not enable interactivity")
        if (
            payload.get("type") == "block_suggestion"
            and self._over_http
            and not interactivity.message_menu_options_url
        ):
            raise EmulatorError(
                "Slack loads external_select options over HTTP only from the manifest's "
                "settings.interactivity.message_menu_options_url, which is not set"
            )
        return await self._inner.interactive(payload)

    async def event(self, envelope: JSON) -> BotReply:
        kind = envelope.get("event", {}).get("type")
        if kind not in self._manifest.settings.event_subscriptions.bot_events:
            raise EmulatorError(f"the app is not subscribed to {kind} events")
        return await self._inner.event(envelope)
