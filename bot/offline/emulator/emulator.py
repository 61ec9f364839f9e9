"""``SlackEmulator``: one object that runs the fake Slack and wires its parts together.

It owns the aiohttp server (Web API, Socket Mode, response URLs), the workspace, and
the driver, and picks the transport to the bot: signed HTTP to ``request_url`` (or to
several copies of the bot, behind a stand-in load balancer) or Socket Mode. Binding to
port 0 by default lets tests run in parallel.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from aiohttp import web

from bot.offline.emulator.context import JSON, ApiContext
from bot.offline.emulator.delivery import HttpDelivery, SocketDelivery
from bot.offline.emulator.driver import Driver
from bot.offline.emulator.manifest import AppManifest
from bot.offline.emulator.response_urls import ResponseUrls
from bot.offline.emulator.socket_mode import SocketModeHub
from bot.offline.emulator.triggers import TriggerRegistry
from bot.offline.emulator.waiting import wait_for
from bot.offline.emulator.webapi import ApiCall, CallHook, WebApi
from bot.offline.emulator.workspace import Message, Workspace

log = logging.getLogger(__name__)


class SlackEmulator:
    """A local, offline Slack for end-to-end tests, demos and benchmarks."""

    def __init__(
        self,
        workspace: Workspace | None = None,
        *,
        request_url: str | None = None,
        socket_mode: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_token: str = "xoxb-emulator-bot-token",  # noqa: S107 - fake credential
        app_token: str = "xapp-1-emulator-app-token",  # noqa: S107 - fake credential
        signing_secret: str = "emulator-signing-secret",  # noqa: S107 - fake credential
        trigger_ttl: float = 3.0,
        ack_timeout: float = 3.0,
        manifest: AppManifest | None = None,
    ) -> None:
        """``manifest``: the app's manifest, by default the repository's ``manifest.yml``; the
        emulator refuses to deliver what Slack would not deliver to an app configured with it
        (see :mod:`bot.offline.emulator.manifest`)."""
        if request_url and socket_mode:
            raise ValueError("choose request_url (HTTP) or socket_mode, not both")
        self.workspace = workspace or Workspace()
        self.bot_token = bot_token
        self.app_token = app_token
        self.signing_secret = signing_secret
        self.ack_timeout = ack_timeout
        self.host = host
        self._port = port
        self.triggers = TriggerRegistry(trigger_ttl)
        self.socket = SocketModeHub(self.workspace.app_id)
        self.response_urls = ResponseUrls(self.workspace)
        ctx = ApiContext(self.workspace, self.triggers, self.socket.issue_url)
        self.web_api = WebApi(ctx, bot_token, app_token)
        self.driver = Driver(self.workspace, self.triggers, self.response_urls)
        self.driver.manifest = manifest if manifest is not None else AppManifest.repository()
        if self.driver.manifest is None:
            log.warning(
                "no manifest.yml beside the package: deliveries are not checked against one"
            )
        self._request_url = request_url
        self._socket_mode = socket_mode
        self._http_delivery: HttpDelivery | None = None
        self._retired_deliveries: list[HttpDelivery] = []
        self._runner: web.AppRunner | None = None

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start serving on ``host:port`` (an ephemeral port when 0)."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self.web_api.handle)
        app.router.add_get("/socket-mode/{ticket}", self.socket.handle)
        app.router.add_post("/response-url/{token}", self.response_urls.handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self._port).start()
        self._port = int(self._runner.addresses[0][1])
        self.socket.base_ws_url = f"ws://{self.host}:{self._port}"
        self.response_urls.base_url = self.base_url
        if self._socket_mode:
            self.use_socket_mode()
        elif self._request_url:
            self.set_request_url(self._request_url)

    async def stop(self) -> None:
        """Close connections and stop the server (stop the bot's socket client first)."""
        await self.socket.close()
        for delivery in (*self._retired_deliveries, self._http_delivery):
            if delivery is not None:
                await delivery.close()
        self._retired_deliveries.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackEmulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- configuration ---------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (known after ``start()``)."""
        return self._port

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the emulator."""
        return f"http://{self.host}:{self._port}"

    @property
    def api_url(self) -> str:
        """Web API base URL, to pass as ``base_url`` to slack_sdk's clients."""
        return f"{self.base_url}/api/"

    def set_request_url(self, request_url: str) -> None:
        """Deliver to the bot over HTTP at ``request_url`` (e.g. ``.../slack/events``)."""
        self._use_http(HttpDelivery(request_url, self.signing_secret, self.ack_timeout))

    def set_request_urls(
        self, request_urls: Sequence[str], *, rng: random.Random | None = None
    ) -> None:
        """Deliver over HTTP to several copies of the bot, as a load balancer in front of them
        would: each request goes to one URL chosen with ``rng`` (seed it to replay a run), and
        one whose process refuses the connection is skipped for another."""
        if not request_urls:
            raise ValueError("give at least one request URL")
        first, *more = request_urls
        self._use_http(
            HttpDelivery(first, self.signing_secret, self.ack_timeout, more_urls=more, rng=rng)
        )

    def _use_http(self, delivery: HttpDelivery) -> None:
        previous = self._http_delivery
        if previous is not None and previous is not delivery:
            # Its client session is closed when the emulator stops.
            self._retired_deliveries.append(previous)
        self._http_delivery = delivery
        self.driver.delivery = delivery

    def use_socket_mode(self) -> None:
        """Deliver to the bot over its Socket Mode connection."""
        self.driver.delivery = SocketDelivery(self.socket, self.ack_timeout)

    # -- Web API log and failure injection -------------------------------------------

    @property
    def calls(self) -> list[ApiCall]:
        """Every Web API call received, oldest first."""
        return self.web_api.calls

    def calls_to(self, method: str) -> list[ApiCall]:
        """Recorded calls of one Web API method."""
        return self.web_api.calls_to(method)

    def on_next_call(
        self,
        method: str,
        callback: CallHook,
        *,
        matches: Callable[[JSON], bool] = lambda _: True,
        after: bool = False,
    ) -> None:
        """See :meth:`WebApi.on_next_call`."""
        self.web_api.on_next_call(method, callback, matches=matches, after=after)

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        status: int = 200,
        retry_after: int | None = None,
    ) -> None:
        """Make the next ``method`` call fail with ``error`` (HTTP ``status``)."""
        self.web_api.fail_next(method, error, status, retry_after)

    # -- waiting ---------------------------------------------------------------------

    async def wait_for(
        self,
        predicate: Any,
        timeout: float = 5.0,  # noqa: ASYNC109 - polling deadline, not I/O
        description: str = "condition",
    ) -> Any:
        """Poll until ``predicate()`` is truthy and return its value; TimeoutError otherwise."""
        return await wait_for(
            predicate,
            timeout=timeout,
            description=description,
            diagnostics=self.workspace.recent_activity,
        )

    async def wait_for_dm(
        self,
        user_id: str,
        contains: str,
        timeout: float = 5.0,  # noqa: ASYNC109 - polling deadline, not I/O
    ) -> Message:
        """Wait for a bot DM to ``user_id`` whose text or blocks contain ``contains``."""

        def found() -> Message | None:
            return next(
                (m for m in self.workspace.dm_messages(user_id) if contains in _visible_text(m)),
                None,
            )

        result: Message = await self.wait_for(
            found, timeout, f"a DM to {user_id} containing {contains!r}"
        )
        return result

    async def wait_for_message(
        self,
        channel_id: str,
        contains: str,
        timeout: float = 5.0,  # noqa: ASYNC109 - polling deadline, not I/O
    ) -> Message:
        """Wait for a message in ``channel_id`` whose text or blocks contain ``contains``."""

        def found() -> Message | None:
            return next(
                (m for m in self.workspace.messages(channel_id) if contains in _visible_text(m)),
                None,
            )

        result: Message = await self.wait_for(
            found, timeout, f"a message in {channel_id} containing {contains!r}"
        )
        return result


def _visible_text(message: Message) -> str:
    """Text plus every string inside the blocks, i.e. roughly what a user reads."""
    parts = [message.text]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                parts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.blocks)
    return "\n".join(parts)
