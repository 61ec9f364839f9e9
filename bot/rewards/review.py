"""Approvers settle a request that needs review (order again, check again, mark resolved) or
retry one that failed."""

from __future__ import annotations

from bot.domain import RewardRequest, Status
from bot.errors import AlreadyDecided, NotAllowed, OverBudget
from bot.policy.rules import Policy
from bot.rewards.orders import fresh_order, new_idempotency_key
from bot.rewards.refusals import decided_request, refuse_unless_allowed
from bot.store import Change, JobKind, Store


class Review:
    """Moves a request out of review or failure; ordering again queues its fulfilment."""

    def __init__(self, store: Store, policy: Policy) -> None:
        self._store = store
        self._policy = policy

    async def order_again(self, request_id: int, actor: str) -> RewardRequest:
        """After review found no card was issued: order again, under a new idempotency key
        (the old one may be refused by the provider as a conflict). Refused once the provider
        gave an order id: that order exists, so it is checked again instead. The requests of a
        shared order the provider gave no id for are ordered again together, in a new one."""
        together = await self._reviewable(request_id, actor)
        request = next(r for r in together if r.id == request_id)
        if request.provider_order_id is not None:
            raise NotAllowed(
                f"{request.provider} has order {request.provider_order_id} for this reward: "
                "use Check again, so the card is not bought twice."
            )
        owner = together[0].order_owner if len(together) > 1 else None
        shared: dict[str, str | int] = (
            {"order_key": new_idempotency_key(owner), "order_owner": owner} if owner else {}
        )
        changes = [
            Change(
                member.id,
                Status.NEEDS_REVIEW,
                Status.APPROVED,
                {"review": "order again"},
                then=(JobKind.FULFIL,) if member is together[0] else (),
                then_for=owner,
                columns={**fresh_order(member.id), **shared},
            )
            for member in together
        ]
        won = await self._store.transition_all(changes, actor)
        return await decided_request(self._store, request_id, actor, won)

    async def retry(self, request_id: int, actor: str) -> RewardRequest:
        """An approver orders a failed reward again, under a new idempotency key. The failure
        released its budget, so the retry reserves it again (or is refused)."""
        request = await self._store.get(request_id)
        await refuse_unless_allowed(self._policy, request, actor)
        if request.status is not Status.FAILED:
            raise AlreadyDecided(f"Reward #{request.id} has not failed.", request.status)
        limits = self._policy.budget_limits(request.team, f"<@{request.requester_id}>'s")
        try:
            change = Change(
                request_id,
                Status.FAILED,
                Status.APPROVED,
                {"retry": "after failure", "failure": request.failure_reason},
                then=(JobKind.FULFIL,),
                columns={**fresh_order(request_id), "decided_by": actor},
            )
            won = await self._store.transition_all(
                [change], actor, reserve=limits if request.budget_amount else ()
            )
        except OverBudget as over:
            raise NotAllowed(f"Cannot retry reward #{request.id}: {over}") from None
        return await decided_request(self._store, request_id, actor, won)

    async def check_again(self, request_id: int, actor: str) -> RewardRequest:
        """After review: look the existing order up again and deliver it if it is ready. Only
        for a request whose provider order id is known: without one there is nothing to look
        up, and re-sending the parked order is not a check (the card offers *Order again*)."""
        together = await self._reviewable(request_id, actor)
        if together[0].provider_order_id is None:
            raise NotAllowed(
                f"Reward #{request_id} has no {together[0].provider} order to check: once its "
                "order list shows whether a card was bought, use Order again or Mark resolved."
            )
        changes = [
            Change(
                member.id,
                Status.NEEDS_REVIEW,
                Status.ORDERING,
                {"review": "check again"},
                then=(JobKind.FULFIL,) if member is together[0] else (),
                then_for=member.order_owner,
                columns={"failure_reason": None},
            )
            for member in together
        ]
        won = await self._store.transition_all(changes, actor)
        return await decided_request(self._store, request_id, actor, won)

    async def resolve(self, request_id: int, actor: str) -> RewardRequest:
        """After review settled the request outside the bot (card sent or refunded by hand)."""
        together = await self._reviewable(request_id, actor)
        changes = [
            Change(member.id, Status.NEEDS_REVIEW, Status.RESOLVED, {"review": "resolved by hand"})
            for member in together
        ]
        won = await self._store.transition_all(changes, actor)
        return await decided_request(self._store, request_id, actor, won)

    async def _reviewable(self, request_id: int, actor: str) -> list[RewardRequest]:
        """The request waiting for review, with whoever must be reviewed with it: until the
        provider gives a shared order's id, its key may have been sent for all its requests,
        and a key must always carry the same people, so they move on together."""
        request = await self._store.get(request_id)
        await refuse_unless_allowed(self._policy, request, actor)
        if request.status is not Status.NEEDS_REVIEW:
            raise AlreadyDecided(
                f"Reward #{request.id} is no longer waiting for review.", request.status
            )
        if request.order_key is None or request.provider_order_id is not None:
            return [request]
        together = [
            member
            for member in await self._store.batch(request)
            if member.order_key == request.order_key
            and member.status is Status.NEEDS_REVIEW
            and member.provider_order_id is None
        ]
        for member in together:
            if member.id != request.id:
                await refuse_unless_allowed(self._policy, member, actor)
        return together
