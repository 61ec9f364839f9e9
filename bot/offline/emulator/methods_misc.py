"""Identity and directory methods: auth.test, users.info, usergroups.users.list,
conversations.open, apps.connections.open."""

from __future__ import annotations

from bot.offline.emulator.context import JSON, ApiContext, require
from bot.offline.emulator.errors import ApiError


def auth_test(ctx: ApiContext, args: JSON) -> JSON:
    """Who the bot token belongs to; Bolt calls this to learn its bot user id."""
    ws = ctx.workspace
    return {
        "ok": True,
        "url": f"https://{ws.team_domain}.slack.com/",
        "team": ws.team_name,
        "user": ws.users[ws.bot_user_id].name,
        "team_id": ws.team_id,
        "user_id": ws.bot_user_id,
        "bot_id": ws.bot_id,
        "is_enterprise_install": False,
    }


def users_info(ctx: ApiContext, args: JSON) -> JSON:
    """A user's profile; ``user_not_found`` for ids not in the workspace."""
    user = ctx.workspace.users.get(require(args, "user", "user_not_found"))
    if user is None:
        raise ApiError("user_not_found")
    return {"ok": True, "user": user.to_api()}


def usergroups_users_list(ctx: ApiContext, args: JSON) -> JSON:
    """The user IDs in one user group; ``no_such_subteam`` for an unknown group ID.

    ``team_id`` only matters for org-level tokens and is ignored, as Slack ignores it for
    a workspace token; ``include_disabled`` is accepted (the emulator has no disabled
    groups).
    """
    group = ctx.workspace.usergroups.get(require(args, "usergroup"))
    if group is None:
        raise ApiError("no_such_subteam")
    return {"ok": True, "users": list(group.members)}


def conversations_open(ctx: ApiContext, args: JSON) -> JSON:
    """Open (or re-open) the bot's DM with one user; the emulator has no group DMs."""
    channel_id = args.get("channel")
    if channel_id:
        channel = ctx.workspace.channels.get(str(channel_id))
        if channel is None:
            raise ApiError("channel_not_found")
        return {"ok": True, "channel": {"id": channel.id}}
    users = [u.strip() for u in str(args.get("users") or "").split(",") if u.strip()]
    if not users:
        raise ApiError("users_list_not_supplied")
    if len(users) > 1:
        raise ApiError("invalid_arguments", "the emulator supports single-user DMs only")
    if users[0] not in ctx.workspace.users:
        raise ApiError("user_not_found")
    existed = any(c.dm_user == users[0] for c in ctx.workspace.channels.values())
    channel = ctx.workspace.open_dm(users[0])
    body: JSON = {"ok": True, "channel": {"id": channel.id}}
    if existed:
        body.update(no_op=True, already_open=True)
    return body


def apps_connections_open(ctx: ApiContext, args: JSON) -> JSON:
    """A one-time WebSocket URL for Socket Mode (app-level token checked by the server)."""
    return {"ok": True, "url": ctx.issue_socket_url()}
