"""Block Kit validation and lookup, using slack_sdk's models as the reference.

Slack rejects payloads that break Block Kit limits; if the emulator accepted them, a
bot could pass its tests and fail in a real workspace. ``to_dict()`` on the sdk models
runs every validator recursively; elements of unknown type parse to ``None``, which we
treat as invalid too. Slack also fills in missing ``block_id``/``action_id`` values, and
state/actions payloads are keyed by them, so normalization happens here as well.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.offline.emulator.errors import ApiError
from bot.offline.emulator.ids import block_id

JSON = dict[str, Any]

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_STACK = 3
_INTERACTIVE_SUFFIXES = (
    "select",
    "button",
    "picker",
    "input",
    "checkboxes",
    "radio_buttons",
    "overflow",
)


def _contains_none(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_contains_none(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_none(v) for v in value)
    return False


def _decode(value: Any, what: str, error: str) -> Any:
    """Form-encoded calls carry blocks/views as JSON strings; JSON calls as objects."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ApiError(error, f"{what} is not valid JSON: {exc}") from exc
    return value


def _check_block(raw: Any, index: int) -> None:
    if not isinstance(raw, dict):
        raise ApiError("invalid_blocks", f"block {index} must be an object")
    try:
        parsed = Block.parse(raw)
        if parsed is None:
            raise ApiError("invalid_blocks", f"block {index}: unsupported type {raw.get('type')!r}")
        rendered = parsed.to_dict()
    except SlackObjectFormationError as exc:
        raise ApiError("invalid_blocks", f"block {index}: {exc}") from exc
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ApiError("invalid_blocks", f"block {index}: malformed ({exc})") from exc
    if _contains_none(rendered):
        raise ApiError("invalid_blocks", f"block {index}: contains an element of unknown type")
    element = raw.get("element")
    if isinstance(element, dict) and element.get("type") == "plain_text_input":
        # slack_sdk does not check this; Slack refuses a prefill longer than the input allows.
        initial, limit = element.get("initial_value"), element.get("max_length")
        if isinstance(initial, str) and isinstance(limit, int) and len(initial) > limit:
            raise ApiError("invalid_blocks", f"block {index}: initial_value exceeds max_length")


def _fill_ids(blocks: list[JSON]) -> list[JSON]:
    """Copy blocks and add the block_id/action_id values Slack would generate."""
    filled = copy.deepcopy(blocks)
    for block in filled:
        block.setdefault("block_id", block_id())
        for element in _own_elements(block):
            if element.get("type", "").endswith(_INTERACTIVE_SUFFIXES):
                element.setdefault("action_id", block_id())
    return filled


def _own_elements(block: JSON) -> list[JSON]:
    elements: list[JSON] = []
    if isinstance(block.get("elements"), list) and block.get("type") == "actions":
        elements += [e for e in block["elements"] if isinstance(e, dict)]
    for key in ("element", "accessory"):
        if isinstance(block.get(key), dict):
            elements.append(block[key])
    return elements


def validate_blocks(value: Any) -> list[JSON]:
    """Validate a message's ``blocks`` argument; raise ``invalid_blocks`` like Slack."""
    blocks = _decode(value, "blocks", "invalid_blocks")
    if not isinstance(blocks, list):
        raise ApiError("invalid_blocks", "blocks must be an array")
    if len(blocks) > MAX_MESSAGE_BLOCKS:
        raise ApiError("invalid_blocks", f"no more than {MAX_MESSAGE_BLOCKS} blocks allowed")
    for index, raw in enumerate(blocks):
        _check_block(raw, index)
    return _fill_ids(blocks)


def validate_view(value: Any, types: tuple[str, ...] = ("modal",)) -> JSON:
    """Validate a ``view`` argument of one of ``types`` (``"modal"`` or ``"home"``);
    raise ``invalid_arguments`` with reasons.

    Modals need a title (and a submit button if they hold inputs); Home tabs have no
    title requirement and may not carry submit/close (slack_sdk's ``View`` checks that).
    """
    view = _decode(value, "view", "invalid_arguments")
    if not isinstance(view, dict):
        raise ApiError("invalid_arguments", "view must be an object")
    view_type = view.get("type")
    if view_type not in types:
        allowed = " or ".join(repr(t) for t in types)
        raise ApiError("invalid_arguments", f"view.type must be {allowed}")
    is_modal = view_type == "modal"
    if is_modal and not view.get("title"):
        raise ApiError("invalid_arguments", "missing required field: title")
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        raise ApiError("invalid_arguments", "missing required field: blocks")
    try:
        for index, raw in enumerate(blocks):
            _check_block(raw, index)
        View(**view).to_dict()
    except ApiError as exc:
        raise ApiError("invalid_arguments", *exc.messages) from exc
    except SlackObjectFormationError as exc:
        raise ApiError("invalid_arguments", str(exc)) from exc
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ApiError("invalid_arguments", f"malformed view ({exc})") from exc
    if is_modal and any(b.get("type") == "input" for b in blocks) and not view.get("submit"):
        raise ApiError("invalid_arguments", "submit is required when input blocks are present")
    checked = dict(view)
    checked["blocks"] = _fill_ids(blocks)
    return checked


def iter_elements(blocks: list[JSON]) -> Iterator[tuple[JSON, JSON]]:
    """Every (block, interactive element) pair a user can operate."""
    for block in blocks:
        for element in _own_elements(block):
            yield block, element


def find_element(blocks: list[JSON], action_id: str, types: tuple[str, ...]) -> tuple[JSON, JSON]:
    """The first element with ``action_id`` of one of ``types``; KeyError if not shown."""
    for block, element in iter_elements(blocks):
        if element.get("action_id") == action_id and element.get("type") in types:
            return block, element
    raise KeyError(action_id)


def flatten_options(container: JSON) -> list[JSON]:
    """Options of a select/checkbox element or an options response, groups flattened."""
    options = [o for o in container.get("options") or [] if isinstance(o, dict)]
    for group in container.get("option_groups") or []:
        options += [o for o in group.get("options") or [] if isinstance(o, dict)]
    return options
