"""Block Kit pieces shared by the modals, messages and App Home."""

from __future__ import annotations

from typing import Any

from bot.domain import RewardRequest
from providers.sandbox import SandboxProvider

Block = dict[str, Any]

# Said on every message about a sandbox reward, and on the App Home while the sandbox runs.
SANDBOX_NOTICE = (
    ":test_tube: *Sandbox:* no real gift card is issued and no money is spent; "
    "its links redeem nothing."
)


def plain(text: str) -> dict[str, Any]:
    """A plain_text object, emoji shown."""
    return {"type": "plain_text", "text": text, "emoji": True}


def mrkdwn_section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def mrkdwn_context(text: str) -> Block:
    """Small grey mrkdwn text under a message's main sections."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def buttons(request: RewardRequest, *specs: tuple[str, str, str | None]) -> Block:
    """An actions block of buttons, each ``(action id, label, style)``, acting on ``request``.
    Its block id names the request, as one message may hold a block for each of a batch."""
    elements = []
    for action_id, label, style in specs:
        button = {
            "type": "button",
            "action_id": action_id,
            "text": plain(label),
            "value": str(request.id),
        }
        if style:
            button["style"] = style
        elements.append(button)
    return {"type": "actions", "block_id": f"{request.status}-{request.id}", "elements": elements}


def sandbox_notice(request: RewardRequest) -> list[Block]:
    """The sandbox warning, for a request the sandbox provider fills; nothing otherwise."""
    if request.provider != SandboxProvider.name:
        return []
    return [mrkdwn_context(SANDBOX_NOTICE)]
