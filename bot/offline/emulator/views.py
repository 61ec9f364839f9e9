"""Modal view stacks per user (open, push, update, close) and each user's Home tab.

Both the Web API (views.open/push/update) and the bot's ``response_action`` answers to
view submissions change the stack, so the rules live here once: at most three views,
ids and root ids assigned by Slack, a fresh ``hash`` on every change. A Home tab is one
``home`` view per user, set by views.publish (or views.update on its id); it keeps its
id across publishes and gets a fresh ``hash`` each time.
"""

from __future__ import annotations

from bot.offline.emulator.blockkit import MAX_VIEW_STACK
from bot.offline.emulator.context import JSON
from bot.offline.emulator.errors import ApiError
from bot.offline.emulator.ids import random_id, view_hash
from bot.offline.emulator.workspace import Workspace


def _common(ws: Workspace, checked: JSON, view_id: str) -> JSON:
    """The fields every view object has, whatever its type."""
    return {
        "id": view_id,
        "team_id": ws.team_id,
        "blocks": checked["blocks"],
        "private_metadata": checked.get("private_metadata", ""),
        "callback_id": checked.get("callback_id", ""),
        "external_id": checked.get("external_id", ""),
        "state": {"values": {}},
        "hash": view_hash(),
        "app_id": ws.app_id,
        "app_installed_team_id": ws.team_id,
        "bot_id": ws.bot_id,
    }


def _render(ws: Workspace, checked: JSON, view_id: str, root: str, previous: str | None) -> JSON:
    """The full view object Slack returns and puts in payloads."""
    return {
        **_common(ws, checked, view_id),
        "type": "modal",
        "title": checked["title"],
        "submit": checked.get("submit"),
        "close": checked.get("close"),
        "clear_on_close": bool(checked.get("clear_on_close", False)),
        "notify_on_close": bool(checked.get("notify_on_close", False)),
        "root_view_id": root,
        "previous_view_id": previous,
    }


def _render_home(ws: Workspace, checked: JSON, view_id: str) -> JSON:
    """The Home tab view object, as views.publish returns it and app_home_opened carries it."""
    view: JSON = {
        **_common(ws, checked, view_id),
        "type": "home",
        "close": None,
        "submit": None,
        "clear_on_close": False,
        "notify_on_close": False,
        "root_view_id": view_id,
        "previous_view_id": None,
    }
    if checked.get("title"):
        view["title"] = checked["title"]
    return view


def _check_external_id(ws: Workspace, checked: JSON, replacing: str | None) -> None:
    """external_id is unique among all of the team's views, modals and Home tabs alike."""
    external_id = checked.get("external_id")
    if external_id:
        other = ws.find_view(external_id=str(external_id))
        if other is None:
            home = ws.find_home_view(external_id=str(external_id))
            other = home[1] if home is not None else None
        if other is not None and other["id"] != replacing:
            raise ApiError("duplicate_external_id")


def open_root(ws: Workspace, user_id: str, checked: JSON) -> JSON:
    """Open a new root modal for the user (replacing any open stack)."""
    _check_external_id(ws, checked, None)
    view_id = random_id("V")
    view = _render(ws, checked, view_id, view_id, None)
    ws.views[user_id] = [view]
    ws.view_errors_by_user.pop(user_id, None)
    return view


def push(ws: Workspace, user_id: str, checked: JSON) -> JSON:
    """Push a modal on the user's stack; Slack allows three at most."""
    stack = ws.views.get(user_id) or []
    if not stack:
        raise ApiError("invalid_arguments", "no modal is open for this user to push onto")
    if len(stack) >= MAX_VIEW_STACK:
        raise ApiError("push_limit_reached")
    _check_external_id(ws, checked, None)
    view = _render(ws, checked, random_id("V"), stack[0]["id"], stack[-1]["id"])
    stack.append(view)
    return view


def replace(ws: Workspace, view_id: str, checked: JSON, expected_hash: str | None) -> JSON:
    """Replace an open view's content in place, keeping its id and position."""
    owner = ws.view_owner(view_id)
    if owner is None:
        raise ApiError("not_found")
    stack = ws.views[owner]
    index = next(i for i, v in enumerate(stack) if v["id"] == view_id)
    old = stack[index]
    if expected_hash and expected_hash != old["hash"]:
        raise ApiError("hash_conflict")
    _check_external_id(ws, checked, view_id)
    stack[index] = _render(ws, checked, view_id, old["root_view_id"], old["previous_view_id"])
    return stack[index]


def close_top(ws: Workspace, user_id: str) -> None:
    """Close the current modal, revealing the previous one (if any)."""
    stack = ws.views.get(user_id) or []
    if stack:
        stack.pop()


def clear(ws: Workspace, user_id: str) -> None:
    """Close every modal the user has open."""
    ws.views.pop(user_id, None)


def publish_home(ws: Workspace, user_id: str, checked: JSON, expected_hash: str | None) -> JSON:
    """Set the user's Home tab (views.publish); ``hash`` must match the current one if given."""
    current = ws.home_views.get(user_id)
    if expected_hash and (current is None or expected_hash != current["hash"]):
        raise ApiError("hash_conflict")
    view_id = current["id"] if current is not None else random_id("V")
    _check_external_id(ws, checked, view_id)
    view = _render_home(ws, checked, view_id)
    ws.home_views[user_id] = view
    return view
