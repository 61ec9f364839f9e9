"""Builders for what Slack sends to apps: slash command fields, interaction payloads and
Events API envelopes.

Field names and nesting follow Slack's documented payloads so that Bolt's parsing,
and any code that reads the raw body, sees exactly what production delivers.
"""

from __future__ import annotations

import time

from bot.offline.emulator.context import JSON
from bot.offline.emulator.ids import opaque_token, random_id
from bot.offline.emulator.workspace import Channel, Workspace

VERIFICATION_TOKEN = "emulator-verification-token"  # noqa: S105 - deprecated, non-secret


def user_ref(ws: Workspace, user_id: str) -> JSON:
    """The ``user`` object in interaction payloads."""
    name = ws.users[user_id].name if user_id in ws.users else user_id
    return {"id": user_id, "username": name, "name": name, "team_id": ws.team_id}


def _base(ws: Workspace, kind: str, user_id: str) -> JSON:
    return {
        "type": kind,
        "team": {"id": ws.team_id, "domain": ws.team_domain},
        "user": user_ref(ws, user_id),
        "api_app_id": ws.app_id,
        "token": VERIFICATION_TOKEN,
        "enterprise": None,
        "is_enterprise_install": False,
    }


def channel_name(channel: Channel) -> str:
    """Slack names DMs ``directmessage`` in command and action payloads."""
    return "directmessage" if channel.is_im else channel.name


def slash_command(
    ws: Workspace,
    user_id: str,
    channel: Channel,
    command: str,
    text: str,
    trigger_id: str,
    response_url: str,
) -> dict[str, str]:
    """The form fields of a slash command invocation."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": ws.team_id,
        "team_domain": ws.team_domain,
        "channel_id": channel.id,
        "channel_name": channel_name(channel),
        "user_id": user_id,
        "user_name": ws.users[user_id].name,
        "command": command,
        "text": text,
        "api_app_id": ws.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def button_action(block: JSON, button: JSON, value: str | None, action_ts: str) -> JSON:
    """One entry of ``actions`` for a clicked button."""
    action: JSON = {
        "action_id": button["action_id"],
        "block_id": block["block_id"],
        "text": button.get("text"),
        "type": "button",
        "action_ts": action_ts,
    }
    if value is not None:
        action["value"] = value
    if "style" in button:
        action["style"] = button["style"]
    return action


def message_block_actions(
    ws: Workspace,
    user_id: str,
    channel: Channel,
    message: JSON,
    is_ephemeral: bool,
    action: JSON,
    trigger_id: str,
    response_url: str,
) -> JSON:
    """``block_actions`` for a button in a message (ephemeral ones carry no ``message``)."""
    payload = _base(ws, "block_actions", user_id)
    payload.update(
        container={
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel.id,
            "is_ephemeral": is_ephemeral,
        },
        trigger_id=trigger_id,
        channel={"id": channel.id, "name": channel_name(channel)},
        state={"values": {}},
        response_url=response_url,
        actions=[action],
    )
    if not is_ephemeral:
        payload["message"] = message
    return payload


def view_block_actions(
    ws: Workspace, user_id: str, view: JSON, action: JSON, trigger_id: str
) -> JSON:
    """``block_actions`` for a button inside a modal or a Home tab: the ``view`` container
    and the view itself, a trigger, and no ``channel``, ``message`` or ``response_url``."""
    payload = _base(ws, "block_actions", user_id)
    payload.update(
        container={"type": "view", "view_id": view["id"]},
        trigger_id=trigger_id,
        view=view,
        actions=[action],
    )
    return payload


def view_submission(ws: Workspace, user_id: str, view: JSON, trigger_id: str) -> JSON:
    """``view_submission`` with the view (its ``state`` already filled in)."""
    payload = _base(ws, "view_submission", user_id)
    payload.update(trigger_id=trigger_id, view=view, response_urls=[])
    return payload


def view_closed(ws: Workspace, user_id: str, view: JSON, is_cleared: bool) -> JSON:
    """``view_closed``, sent only for views opened with ``notify_on_close``."""
    payload = _base(ws, "view_closed", user_id)
    payload.update(view=view, is_cleared=is_cleared)
    return payload


def block_suggestion(
    ws: Workspace, user_id: str, view: JSON, block_id: str, action_id: str, value: str
) -> JSON:
    """``block_suggestion``: the user typed ``value`` into an external select."""
    payload = _base(ws, "block_suggestion", user_id)
    payload.update(
        container={"type": "view", "view_id": view["id"]},
        action_id=action_id,
        block_id=block_id,
        value=value,
        view=view,
    )
    return payload


def event_callback(ws: Workspace, event: JSON) -> JSON:
    """The Events API outer envelope (``type: event_callback``) around one ``event``."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": ws.team_id,
        "api_app_id": ws.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": random_id("Ev"),
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": ws.team_id,
                "user_id": ws.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + opaque_token(),
    }


def app_home_opened(
    ws: Workspace, user_id: str, dm: Channel, tab: str, view: JSON | None, event_ts: str
) -> JSON:
    """``app_home_opened``: ``channel`` is the user's DM with the app; ``view`` is present
    only when the Home tab was opened and a view was published to it before."""
    event: JSON = {
        "type": "app_home_opened",
        "user": user_id,
        "channel": dm.id,
        "tab": tab,
        "event_ts": event_ts,
    }
    if tab == "home" and view is not None:
        event["view"] = view
    return event
