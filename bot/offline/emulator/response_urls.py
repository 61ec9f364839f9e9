"""``response_url`` endpoints handed out with commands and message interactions.

Bolt's ``respond()`` posts here. As in Slack: the default is a new ephemeral message to
the user, ``response_type: in_channel`` posts visibly, and for message interactions
``replace_original`` / ``delete_original`` edit the message the user clicked in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.offline.emulator.blockkit import validate_blocks
from bot.offline.emulator.context import JSON
from bot.offline.emulator.errors import ApiError
from bot.offline.emulator.ids import opaque_token
from bot.offline.emulator.workspace import Workspace


@dataclass
class _Origin:
    user_id: str
    channel_id: str
    message_ts: str | None
    is_ephemeral: bool


class ResponseUrls:
    """Issues response URLs and applies what the bot posts to them."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.base_url = ""
        self.posts: list[JSON] = []
        self._origins: dict[str, _Origin] = {}

    def issue(
        self,
        user_id: str,
        channel_id: str,
        message_ts: str | None = None,
        is_ephemeral: bool = False,
    ) -> str:
        """A URL bound to the user, conversation and (optionally) the source message."""
        token = opaque_token()
        self._origins[token] = _Origin(user_id, channel_id, message_ts, is_ephemeral)
        return f"{self.base_url}/response-url/{token}"

    async def handle(self, request: web.Request) -> web.Response:
        """aiohttp handler for ``/response-url/{token}``."""
        origin = self._origins.get(request.match_info["token"])
        if origin is None:
            return web.Response(status=404, text="invalid_token")
        try:
            body: Any = json.loads(await request.text() or "{}")
        except json.JSONDecodeError:
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload")
        self.posts.append(body)
        try:
            self.apply(origin, body)
        except ApiError as exc:
            return web.Response(status=400, text=exc.error)
        return web.json_response({"ok": True})

    def apply(self, origin: _Origin, body: JSON) -> None:
        """Do what Slack does with a response_url message."""
        ws = self.ws
        channel = ws.channels.get(origin.channel_id)
        if channel is None:
            raise ApiError("channel_not_found")
        blocks = validate_blocks(body["blocks"]) if body.get("blocks") else []
        text = str(body.get("text") or "")
        if body.get("delete_original") or body.get("replace_original"):
            self._edit_original(origin, body, text, blocks)
            return
        if not text and not blocks:
            raise ApiError("no_text")
        thread_ts = body.get("thread_ts")
        if body.get("response_type") == "in_channel":
            ws.post(channel, ws.bot_user_id, text, blocks, thread_ts)
        else:
            ws.post_ephemeral(channel, origin.user_id, text, blocks, thread_ts)

    def _edit_original(self, origin: _Origin, body: JSON, text: str, blocks: list[JSON]) -> None:
        ws = self.ws
        if origin.message_ts is None:
            raise ApiError("no_original_message")
        if origin.is_ephemeral:
            eph = ws.find_ephemeral(origin.user_id, origin.channel_id, origin.message_ts)
            if eph is None:
                raise ApiError("message_not_found")
            if body.get("delete_original"):
                ws.delete_ephemeral(eph)
            else:
                eph.text, eph.blocks = text, blocks
            return
        msg = ws.find_message(origin.channel_id, origin.message_ts)
        if msg is None:
            raise ApiError("message_not_found")
        if body.get("delete_original"):
            ws.delete_message(origin.channel_id, origin.message_ts)
        else:
            msg.text, msg.blocks = text, blocks
            msg.edited = {"user": ws.bot_user_id, "ts": ws.clock.next_ts()}
