"""Who may do what. Pure functions over configuration and stored state."""

from __future__ import annotations

from collections.abc import Collection

from bot.domain import RewardRequest


def approvers_for(
    requester_id: str, recipient_id: str | None, approvers: Collection[str]
) -> list[str]:
    """The approvers who may decide a request: nobody approves their own request or a reward
    to themselves. ``recipient_id`` is ``None`` before a recipient is chosen."""
    return [a for a in approvers if a not in (requester_id, recipient_id)]


def refusal_to_decide(request: RewardRequest, actor: str, approvers: Collection[str]) -> str | None:
    """Why ``actor`` may not approve or reject ``request``, or ``None`` if they may."""
    if actor not in approvers:
        return "Only a configured approver can approve or reject reward requests."
    if actor == request.requester_id:
        return "You cannot approve or reject your own reward request."
    if actor == request.recipient_id:
        return "You cannot approve or reject a reward that is for you."
    return None
