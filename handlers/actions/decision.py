"""What the request buttons share: which request a click is about, and refusals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.errors import AlreadyDecided, NotAllowed, RequestNotFound
from bot.runtime import Runtime
from handlers.payloads import BlockActions, request_id_in

T = TypeVar("T")


def clicked_request_id(click: BlockActions) -> int | None:
    """The request id in the button's value, or ``None`` if the value is not one.

    The value only says *which* request; whether the clicker may decide it is always checked
    against stored state, so a forged value can at most name another request.
    """
    return request_id_in(click.actions[0].value if click.actions else None)


async def decide_or_refuse(
    runtime: Runtime,
    click: BlockActions,
    decide: Callable[[int, str], Awaitable[T]],
) -> T | None:
    """Run ``decide(request_id, clicker)`` for the clicked request; on refusal tell the clicker
    why and return None."""
    request_id = clicked_request_id(click)
    if request_id is None:
        await runtime.rewards.replies.tell(
            click.channel_id, click.user.id, "That button is not valid."
        )
        return None
    try:
        return await decide(request_id, click.user.id)
    except (NotAllowed, AlreadyDecided, RequestNotFound) as refusal:
        await runtime.rewards.replies.tell(click.channel_id, click.user.id, str(refusal))
        return None
