"""View methods: views.open, views.push, views.update (modals) and views.publish (Home tab)."""

from __future__ import annotations

from bot.offline.emulator import views
from bot.offline.emulator.blockkit import validate_view
from bot.offline.emulator.context import JSON, ApiContext, optional_str
from bot.offline.emulator.errors import ApiError


def _trigger(args: JSON) -> str | None:
    return optional_str(args, "trigger_id") or optional_str(args, "interactivity_pointer")


def views_open(ctx: ApiContext, args: JSON) -> JSON:
    """Exchange a trigger for a new root modal shown to the user who caused it."""
    if args.get("view") in (None, ""):
        raise ApiError("invalid_arguments", "missing required field: view")
    checked = validate_view(args["view"])
    user_id = ctx.triggers.exchange(_trigger(args))
    return {"ok": True, "view": views.open_root(ctx.workspace, user_id, checked)}


def views_push(ctx: ApiContext, args: JSON) -> JSON:
    """Exchange a trigger to push a modal on top of the user's open modal."""
    if args.get("view") in (None, ""):
        raise ApiError("invalid_arguments", "missing required field: view")
    checked = validate_view(args["view"])
    user_id = ctx.triggers.exchange(_trigger(args))
    return {"ok": True, "view": views.push(ctx.workspace, user_id, checked)}


def views_update(ctx: ApiContext, args: JSON) -> JSON:
    """Replace an open modal, found by ``view_id`` or ``external_id``; honours ``hash``."""
    if args.get("view") in (None, ""):
        raise ApiError("invalid_arguments", "missing required field: view")
    view_id, external_id = optional_str(args, "view_id"), optional_str(args, "external_id")
    if not view_id and not external_id:
        raise ApiError("invalid_arguments", "either view_id or external_id is required")
    checked = validate_view(args["view"], ("modal", "home"))
    expected_hash = optional_str(args, "hash")
    found = ctx.workspace.find_view(view_id=view_id, external_id=external_id)
    if found is not None:
        _require_type(checked, "modal")
        view = views.replace(ctx.workspace, found["id"], checked, expected_hash)
        return {"ok": True, "view": view}
    home = ctx.workspace.find_home_view(view_id=view_id, external_id=external_id)
    if home is None:
        raise ApiError("not_found")
    _require_type(checked, "home")
    return {"ok": True, "view": views.publish_home(ctx.workspace, home[0], checked, expected_hash)}


def _require_type(checked: JSON, view_type: str) -> None:
    """An update keeps the surface: a modal stays a modal, a Home tab stays a Home tab."""
    if checked.get("type") != view_type:
        raise ApiError("invalid_arguments", f"view.type must be {view_type!r} for this view")


def views_publish(ctx: ApiContext, args: JSON) -> JSON:
    """Publish (create or replace) a user's Home tab; honours ``hash``.

    Slack documents an unknown ``user_id`` as ``invalid_arguments`` with the message
    ``invalid `user_id```, and that is what the emulator answers.
    """
    if args.get("view") in (None, ""):
        raise ApiError("invalid_arguments", "missing required field: view")
    user_id = optional_str(args, "user_id")
    if user_id is None:
        raise ApiError("invalid_arguments", "missing required field: user_id")
    checked = validate_view(args["view"], ("home",))
    if user_id not in ctx.workspace.users:
        raise ApiError("invalid_arguments", "invalid `user_id`")
    view = views.publish_home(ctx.workspace, user_id, checked, optional_str(args, "hash"))
    return {"ok": True, "view": view}
