"""Builds ``view.state.values`` for a submission the way Slack's client would.

Tests say *what the user entered* per input ``block_id``; Slack decides the wire shape
per element type, pre-fills untouched inputs from their ``initial_*`` values, and
refuses (client-side) submissions a real user could not make: a required field left
empty, an option that was never offered, text over ``max_length``.
"""

from __future__ import annotations

from typing import Any

from bot.offline.emulator.blockkit import flatten_options
from bot.offline.emulator.context import JSON
from bot.offline.emulator.errors import EmulatorError

# element type -> (state key, initial key, kind); kind drives conversion and emptiness.
_SHAPES: dict[str, tuple[str, str, str]] = {
    "plain_text_input": ("value", "initial_value", "text"),
    "email_text_input": ("value", "initial_value", "text"),
    "url_text_input": ("value", "initial_value", "text"),
    "number_input": ("value", "initial_value", "number"),
    "users_select": ("selected_user", "initial_user", "scalar"),
    "multi_users_select": ("selected_users", "initial_users", "list"),
    "conversations_select": ("selected_conversation", "initial_conversation", "scalar"),
    "multi_conversations_select": ("selected_conversations", "initial_conversations", "list"),
    "channels_select": ("selected_channel", "initial_channel", "scalar"),
    "multi_channels_select": ("selected_channels", "initial_channels", "list"),
    "static_select": ("selected_option", "initial_option", "option"),
    "external_select": ("selected_option", "initial_option", "option"),
    "radio_buttons": ("selected_option", "initial_option", "option"),
    "multi_static_select": ("selected_options", "initial_options", "options"),
    "multi_external_select": ("selected_options", "initial_options", "options"),
    "checkboxes": ("selected_options", "initial_options", "options"),
    "datepicker": ("selected_date", "initial_date", "scalar"),
    "timepicker": ("selected_time", "initial_time", "scalar"),
    "datetimepicker": ("selected_date_time", "initial_date_time", "scalar"),
}
_EXTERNAL = ("external_select", "multi_external_select")


def build_state(
    view: JSON, values: JSON, offered: dict[str, list[JSON]], strict: bool = True
) -> JSON:
    """``{"values": {block_id: {action_id: {...}}}}`` for the view's input blocks.

    ``offered`` maps an external select's action_id to the options the bot last
    returned for it (from ``block_suggestion``). ``strict=False`` skips the client-side
    rules, to forge submissions a tampered client could send.
    """
    inputs = {b["block_id"]: b for b in view.get("blocks", []) if b.get("type") == "input"}
    unknown = set(values) - inputs.keys()
    if unknown:
        raise EmulatorError(f"no input blocks {sorted(unknown)} in view; inputs: {sorted(inputs)}")
    state: JSON = {}
    for block_id, block in inputs.items():
        element: JSON = block["element"]
        etype = str(element.get("type"))
        if etype not in _SHAPES:
            raise EmulatorError(f"input {block_id!r}: element type {etype!r} not supported")
        key, initial_key, kind = _SHAPES[etype]
        if block_id in values:
            allowed = _allowed_options(element, offered)
            value = _convert(block_id, element, kind, values[block_id], allowed, strict)
        else:
            value = element.get(initial_key, [] if kind in ("list", "options") else None)
        if strict and value in (None, "", []) and not block.get("optional", False):
            raise EmulatorError(f"input {block_id!r} is required: Slack would not submit")
        state[block_id] = {element["action_id"]: {"type": etype, key: value}}
    return {"values": state}


def _allowed_options(element: JSON, offered: dict[str, list[JSON]]) -> list[JSON]:
    if element.get("type") in _EXTERNAL:
        return offered.get(str(element.get("action_id")), []) + _initial_options(element)
    return flatten_options(element)


def _initial_options(element: JSON) -> list[JSON]:
    initial = element.get("initial_option") or element.get("initial_options") or []
    return [initial] if isinstance(initial, dict) else list(initial)


def _convert(
    block_id: str, element: JSON, kind: str, raw: Any, allowed: list[JSON], strict: bool
) -> Any:
    if not strict:
        return _forged(kind, raw, allowed)
    if kind == "text":
        text = None if raw is None else str(raw)
        if text is not None and len(text) > int(element.get("max_length", 3000)):
            raise EmulatorError(f"input {block_id!r}: longer than max_length")
        if text and len(text) < int(element.get("min_length", 0)):
            raise EmulatorError(f"input {block_id!r}: shorter than min_length")
        return text or None
    if kind == "number":
        return _number(block_id, element, raw)
    if kind == "list":
        return [str(v) for v in raw]
    if kind == "option":
        return None if raw is None else _pick(block_id, raw, allowed)
    if kind == "options":
        return [_pick(block_id, v, allowed) for v in raw]
    return None if raw is None else str(raw)


def _number(block_id: str, element: JSON, raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    text = str(raw)
    try:
        number = float(text)
    except ValueError as exc:
        raise EmulatorError(f"input {block_id!r}: {text!r} is not a number") from exc
    if not element.get("is_decimal_allowed") and not number.is_integer():
        raise EmulatorError(f"input {block_id!r}: decimals are not allowed")
    low, high = element.get("min_value"), element.get("max_value")
    if (low is not None and number < float(low)) or (high is not None and number > float(high)):
        raise EmulatorError(f"input {block_id!r}: {text} is out of range")
    return text


def _pick(block_id: str, raw: Any, allowed: list[JSON]) -> JSON:
    """The offered option the user picked, by value (a user cannot pick anything else)."""
    value = raw.get("value") if isinstance(raw, dict) else raw
    for option in allowed:
        if option.get("value") == value:
            return option
    offered = [o.get("value") for o in allowed]
    raise EmulatorError(f"input {block_id!r}: {value!r} is not among offered options {offered}")


def _forged(kind: str, raw: Any, allowed: list[JSON]) -> Any:
    """Pass values through unchecked; unknown options get a synthesized option object."""

    def option(value: Any) -> JSON:
        value = value.get("value") if isinstance(value, dict) else value
        known = next((o for o in allowed if o.get("value") == value), None)
        return known or {"text": {"type": "plain_text", "text": str(value)}, "value": value}

    if raw is None:
        return None
    if kind == "option":
        return option(raw)
    if kind == "options":
        return [option(v) for v in raw]
    if kind == "list":
        return [str(v) for v in raw]
    return str(raw)
