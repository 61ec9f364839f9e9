"""Modal methods: views.open, views.push, views.update."""

from __future__ import annotations

from bot.emulator import views
from bot.emulator.blockkit import validate_view
from bot.emulator.context import JSON, ApiContext, optional_str
from bot.emulator.errors import ApiError


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
    checked = validate_view(args["view"])
    found = ctx.workspace.find_view(view_id=view_id, external_id=external_id)
    if found is None:
        raise ApiError("not_found")
    view = views.replace(ctx.workspace, found["id"], checked, optional_str(args, "hash"))
    return {"ok": True, "view": view}
