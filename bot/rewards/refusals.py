"""Why someone may not act on a request now, said the same way by every use case."""

from __future__ import annotations

import logging

from bot.domain import RewardRequest, Status
from bot.errors import AlreadyDecided, NotAllowed
from bot.policy.rules import Policy
from bot.slack.gateway import SLACK_FAILURES
from bot.store import Store

log = logging.getLogger(__name__)


async def refuse_unless_allowed(policy: Policy, request: RewardRequest, actor: str) -> None:
    """Raise :class:`NotAllowed` unless ``actor`` may decide or review ``request``."""
    try:
        refusal = await policy.refusal_to_decide(request, actor)
    except SLACK_FAILURES as exc:
        log.warning("could not read the policy's user groups: %r", exc)
        raise NotAllowed(
            "Could not check that you are an approver (Slack did not answer). Try again."
        ) from None
    if refusal:
        raise NotAllowed(refusal)


async def decided_request(store: Store, request_id: int, actor: str, won: bool) -> RewardRequest:
    """The request as a transition left it; ``won`` false (another decision got there first)
    raises :class:`AlreadyDecided` saying what happened instead."""
    request = await store.get(request_id)
    if not won:
        raise already_decided(request, actor)
    return request


def already_decided(request: RewardRequest, actor: str) -> AlreadyDecided:
    if request.status is Status.CANCELLED:
        return AlreadyDecided(
            f"Reward #{request.id} was cancelled by its requester.", request.status
        )
    if request.status is Status.EXPIRED:
        return AlreadyDecided(
            f"Reward #{request.id} expired before anyone decided it.", request.status
        )
    if request.status is Status.AWAITING_SECOND_APPROVAL:
        return AlreadyDecided(
            f"Reward #{request.id} already has its first approval, from "
            f"<@{request.first_approved_by}>.",
            request.status,
        )
    verb = "rejected" if request.status is Status.REJECTED else "approved"
    if request.decided_by == actor:
        return AlreadyDecided(f"You already {verb} reward #{request.id}.", request.status)
    who = f" by <@{request.decided_by}>" if request.decided_by else ""
    return AlreadyDecided(f"Reward #{request.id} was already {verb}{who}.", request.status)
