"""The app's manifest as Slack reads it: what Slack delivers to an app configured with it.

Real Slack sends a slash command only if the manifest declares it, an event only if the app
subscribes to it (``settings.event_subscriptions.bot_events``), interactive payloads only with
interactivity enabled, and an ``app_home_opened`` only for a tab the App Home has. Over HTTP it
also needs a URL for each kind of request: the command's ``url``, the events' ``request_url``,
interactivity's ``request_url``, and for an ``external_select``'s ``block_suggestion`` the
*Options Load URL* (``settings.interactivity.message_menu_options_url``). Over Socket Mode
everything comes over the socket and no URL is needed.

The manifest is read as installed for the transport in use: the repository's ``manifest.yml``
is written for HTTP and its README has Socket Mode users set ``socket_mode_enabled: true``, so
the emulator's transport, not that flag, decides which rules apply. The URLs' host is a
placeholder replaced at install time; their path is what the bot must serve, so over HTTP it
must be the path the emulator posts to.

:class:`ManifestGate` refuses, with :class:`EmulatorError`, whatever the manifest would keep
Slack from sending, so a test cannot pass on a delivery that would never happen.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.offline.emulator.context import JSON
from bot.offline.emulator.delivery import BotReply, Delivery
from bot.offline.emulator.errors import EmulatorError

# The repository's manifest, which the emulator checks against unless given another one.
REPOSITORY_MANIFEST = Path(__file__).resolve().parents[3] / "manifest.yml"


class _Manifest(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Command(_Manifest):
    command: str
    url: str | None = None


class _AppHome(_Manifest):
    home_tab_enabled: bool = False
    messages_tab_enabled: bool = False


class _Features(_Manifest):
    app_home: _AppHome = Field(default_factory=_AppHome)
    slash_commands: tuple[_Command, ...] = ()


class _Events(_Manifest):
    request_url: str | None = None
    bot_events: tuple[str, ...] = ()


class _Interactivity(_Manifest):
    is_enabled: bool = False
    request_url: str | None = None
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
        """Read a manifest file (YAML or JSON, as Slack accepts both)."""
        try:
            data: Any = yaml.safe_load(path.read_text())
            return cls.model_validate(data)
        except (yaml.YAMLError, ValidationError) as exc:
            raise EmulatorError(f"{path} is not a Slack app manifest: {exc}") from exc

    @classmethod
    def repository(cls) -> AppManifest | None:
        """The repository's ``manifest.yml``; ``None`` when the package runs without its source
        tree (installed from a wheel), where there is no manifest to check against."""
        return cls.load(REPOSITORY_MANIFEST) if REPOSITORY_MANIFEST.is_file() else None

    @property
    def commands(self) -> frozenset[str]:
        return frozenset(c.command for c in self.features.slash_commands)


class ManifestGate(Delivery):
    """A transport that delivers only what Slack would deliver to an app with ``manifest``.

    ``request_urls``: where the emulator posts over HTTP (each copy of the bot); when given,
    each manifest URL's path must be theirs."""

    def __init__(
        self,
        inner: Delivery,
        manifest: AppManifest,
        *,
        over_http: bool,
        request_urls: Sequence[str] = (),
    ) -> None:
        self._inner = inner
        self._manifest = manifest
        self._over_http = over_http
        self._served_paths = {_path(url) for url in request_urls}

    async def slash_command(self, fields: dict[str, str]) -> BotReply:
        name = fields.get("command")
        command = next(
            (c for c in self._manifest.features.slash_commands if c.command == name), None
        )
        if command is None:
            raise EmulatorError(
                f"Slack sends no {name} to this app: the manifest declares no such slash command "
                f"in features.slash_commands (it declares {sorted(self._manifest.commands)})"
            )
        self._check_url(f"the {name} command", f"features.slash_commands[{name}].url", command.url)
        return await self._inner.slash_command(fields)

    async def interactive(self, payload: JSON) -> BotReply:
        kind = payload.get("type")
        interactivity = self._manifest.settings.interactivity
        if not interactivity.is_enabled:
            raise EmulatorError(
                f"Slack sends no {kind} to this app: the manifest does not enable interactivity "
                "(settings.interactivity.is_enabled)"
            )
        if kind == "block_suggestion":
            # Searches in an external_select go to the Options Load URL, not the Request URL.
            self._check_url(
                "external_select options (block_suggestion)",
                "settings.interactivity.message_menu_options_url",
                interactivity.message_menu_options_url,
            )
        else:
            self._check_url(
                str(kind), "settings.interactivity.request_url", interactivity.request_url
            )
        return await self._inner.interactive(payload)

    async def event(self, envelope: JSON) -> BotReply:
        event = envelope.get("event", {})
        kind = event.get("type")
        subscriptions = self._manifest.settings.event_subscriptions
        if kind not in subscriptions.bot_events:
            raise EmulatorError(
                f"Slack sends no {kind} events to this app: {kind} is not in the manifest's "
                f"settings.event_subscriptions.bot_events {list(subscriptions.bot_events)}"
            )
        if kind == "app_home_opened":
            self._check_app_home_tab(str(event.get("tab")))
        self._check_url(
            f"{kind} events", "settings.event_subscriptions.request_url", subscriptions.request_url
        )
        return await self._inner.event(envelope)

    def _check_app_home_tab(self, tab: str) -> None:
        setting = f"{tab}_tab_enabled"
        if not getattr(self._manifest.features.app_home, setting, False):
            raise EmulatorError(
                f"no user can open the app's {tab} tab: the manifest does not enable it "
                f"(features.app_home.{setting})"
            )

    def _check_url(self, what: str, setting: str, url: str | None) -> None:
        """Over HTTP, Slack posts ``what`` to ``url``: it must be set, on a path the bot serves."""
        if not self._over_http:
            return
        if not url:
            raise EmulatorError(
                f"Slack cannot send {what} over HTTP: the manifest has no {setting}"
            )
        if self._served_paths and _path(url) not in self._served_paths:
            raise EmulatorError(
                f"Slack would post {what} to {setting} = {url}, but its path {_path(url)!r} is "
                f"not where the bot is served ({', '.join(sorted(self._served_paths))})"
            )


def _path(url: str) -> str:
    return urlsplit(url).path or "/"
