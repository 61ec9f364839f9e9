"""What the Approve and Reject buttons share: which request a click is about."""

from __future__ import annotations

from handlers.payloads import BlockActions


def clicked_request_id(click: BlockActions) -> int | None:
    """The request id in the button's value, or ``None`` if the value is not one.

    The value only says *which* request; whether the clicker may decide it is always checked
    against stored state, so a forged value can at most name another request.
    """
    value = click.actions[0].value if click.actions else None
    return int(value) if value and value.isdecimal() and len(value) < 19 else None
