"""Messaging methods: chat.postMessage, chat.update, chat.postEphemeral,
chat.getPermalink, with the membership and content rules Slack enforces."""

from __future__ import annotations

import json
from typing import Any

from bot.offline.emulator.blockkit import validate_blocks
from bot.offline.emulator.context import JSON, ApiContext, optional_str, require
from bot.offline.emulator.errors import ApiError
from bot.offline.emulator.workspace import Channel

MAX_TEXT = 40_000


def _content(args: JSON) -> tuple[str, list[JSON]]:
    """Text and validated blocks; Slack needs text unless blocks/attachments are given."""
    text = optional_str(args, "text") or ""
    blocks = validate_blocks(args["blocks"]) if args.get("blocks") not in (None, "") else []
    if not text and not blocks and not args.get("attachments"):
        raise ApiError("no_text")
    if len(text) > MAX_TEXT:
        raise ApiError("msg_too_long")
    return text, blocks


def _writable_channel(ctx: ApiContext, ref: Any, *, any_form: bool = False) -> Channel:
    """The target conversation, refused the way Slack refuses it for a bot token.

    Only ``chat.postMessage`` (``any_form``) accepts a user ID or a ``#name``; the other
    methods need the conversation's ID (a DM's ``D…`` ID, not the user's).
    """
    if not ref:
        raise ApiError("channel_not_found")
    ws = ctx.workspace
    channel = ws.resolve_channel(str(ref)) if any_form else ws.channels.get(str(ref))
    if channel is None:
        raise ApiError("channel_not_found")
    if ws.bot_user_id not in channel.members:
        # Private channels the bot is not in are invisible to it.
        raise ApiError("channel_not_found" if channel.is_private else "not_in_channel")
    return channel


def post_message(ctx: ApiContext, args: JSON) -> JSON:
    """Post as the bot; a ``U…`` channel posts into the bot's DM with that user."""
    channel = _writable_channel(ctx, args.get("channel"), any_form=True)
    text, blocks = _content(args)
    msg = ctx.workspace.post(
        channel, ctx.workspace.bot_user_id, text, blocks, optional_str(args, "thread_ts")
    )
    msg.metadata = _metadata(args.get("metadata"))
    return {"ok": True, "channel": channel.id, "ts": msg.ts, "message": msg.to_api()}


def _metadata(raw: Any) -> JSON | None:
    """``metadata`` arrives as an object (JSON body) or a JSON string (form body)."""
    if raw is None:
        return None
    value = json.loads(raw) if isinstance(raw, str) else raw
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("event_type"), str)
        or not isinstance(value.get("event_payload"), dict)
    ):
        raise ApiError("invalid_metadata_format")
    return value


def history(ctx: ApiContext, args: JSON) -> JSON:
    """``conversations.history``: top-level messages newest first, between ``oldest`` and
    ``latest`` (exclusive), ``limit`` per page with a ``next_cursor``; metadata on request."""
    channel = _writable_channel(ctx, args.get("channel"))
    try:
        limit = max(1, min(int(args.get("limit") or 100), 999))
        oldest = float(args.get("oldest") or 0)
        latest = float(args.get("latest") or "inf")
    except ValueError:
        raise ApiError("invalid_arguments", "limit, oldest and latest must be numbers") from None
    cursor = str(args.get("cursor") or "0")
    if not cursor.isdecimal():
        raise ApiError("invalid_cursor")
    with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
    messages = [
        m
        for m in reversed(ctx.workspace.messages(channel.id))
        if m.thread_ts in (None, m.ts) and oldest < float(m.ts) < latest
    ]
    start = int(cursor)
    page = messages[start : start + limit]
    shown = []
    for message in page:
        data = message.to_api()
        if not with_metadata:
            data.pop("metadata", None)
        shown.append(data)
    more = start + limit < len(messages)
    return {
        "ok": True,
        "messages": shown,
        "has_more": more,
        "response_metadata": {"next_cursor": str(start + limit) if more else ""},
    }


def update(ctx: ApiContext, args: JSON) -> JSON:
    """Edit one of the bot's messages; omitted ``blocks`` keep the previous blocks."""
    ws = ctx.workspace
    channel = _writable_channel(ctx, args.get("channel"))
    msg = ws.find_message(channel.id, require(args, "ts", "message_not_found"))
    if msg is None:
        raise ApiError("message_not_found")
    if msg.user != ws.bot_user_id:
        raise ApiError("cant_update_message")
    has_blocks = args.get("blocks") is not None
    if not has_blocks and not optional_str(args, "text") and not msg.blocks:
        raise ApiError("no_text")
    if has_blocks:
        msg.blocks = validate_blocks(args["blocks"]) if args["blocks"] != "" else []
    if "text" in args:
        text = optional_str(args, "text") or ""
        if len(text) > MAX_TEXT:
            raise ApiError("msg_too_long")
        msg.text = text
    msg.edited = {"user": ws.bot_user_id, "ts": ws.clock.next_ts()}
    return {
        "ok": True,
        "channel": channel.id,
        "ts": msg.ts,
        "text": msg.text,
        "message": msg.to_api(),
    }


def post_ephemeral(ctx: ApiContext, args: JSON) -> JSON:
    """A message only ``user`` sees; they must be able to see the conversation."""
    ws = ctx.workspace
    channel = _writable_channel(ctx, args.get("channel"))
    user_id = require(args, "user", "user_not_in_channel")
    if user_id not in ws.users:
        raise ApiError("user_not_found")
    if user_id not in channel.members:
        raise ApiError("user_not_in_channel")
    text, blocks = _content(args)
    eph = ws.post_ephemeral(channel, user_id, text, blocks, optional_str(args, "thread_ts"))
    return {"ok": True, "message_ts": eph.ts}


def get_permalink(ctx: ApiContext, args: JSON) -> JSON:
    """A link to a message (thread replies included) in a conversation the bot can see.

    ``channel`` must be the conversation's ID; a reply's link carries its thread's
    ``thread_ts`` and ``cid``, as Slack documents.
    """
    ws = ctx.workspace
    channel = ws.channels.get(require(args, "channel", "channel_not_found"))
    if channel is None or not ws.can_see(ws.bot_user_id, channel):
        raise ApiError("channel_not_found")
    msg = ws.find_message(channel.id, require(args, "message_ts", "message_not_found"))
    if msg is None:
        raise ApiError("message_not_found")
    link = f"https://{ws.team_domain}.slack.com/archives/{channel.id}/p{msg.ts.replace('.', '')}"
    if msg.thread_ts not in (None, msg.ts):
        link += f"?thread_ts={msg.thread_ts}&cid={channel.id}"
    return {"ok": True, "channel": channel.id, "permalink": link}
