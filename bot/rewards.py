"""The use cases behind the Slack surfaces: request a reward, approve it, reject it."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from bot import policy, slack_views
from bot.catalog import Catalog
from bot.domain import Money, NewRewardRequest, RewardRequest, Status, parse_amount
from bot.errors import AlreadyDecided, InvalidRequest, NotAllowed
from bot.slack_gateway import SLACK_FAILURES, SlackGateway, UnknownUser
from bot.store import JobKind, Store

log = logging.getLogger(__name__)

# Slackbot is reported with is_bot false, but it cannot receive a DM from the bot.
_SLACKBOT = "USLACKBOT"


class RewardDraft(BaseModel):
    """What a manager submitted, before validation. Keys of ``InvalidRequest.field_errors``
    are these field names: ``recipient``, ``card``, ``amount``, ``message``."""

    model_config = ConfigDict(frozen=True)

    requester_id: str
    origin_channel_id: str
    # Slack's id of the submitted modal: the same submission is never stored twice.
    submission_key: str
    recipient_id: str | None
    product_key: str | None
    amount_text: str | None
    message: str | None


class RewardService:
    """Validates, stores and decides reward requests; approval queues the fulfilment job."""

    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        gateway: SlackGateway,
        approvers: Sequence[str],
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._gateway = gateway
        self._approvers = list(approvers)

    def can_be_approved(self, requester_id: str) -> bool:
        """Whether anyone other than the requester can approve their requests."""
        return bool(policy.approvers_for(requester_id, None, self._approvers))

    async def request_reward(self, draft: RewardDraft) -> tuple[RewardRequest, bool]:
        """Validate and store a request; returns it and whether it is new (a resubmission of
        the same modal returns the stored one). Raises :class:`InvalidRequest`, storing nothing."""
        errors: dict[str, str] = {}
        recipient_error = await self._recipient_error(draft)
        if recipient_error:
            errors["recipient"] = recipient_error
        elif not policy.approvers_for(draft.requester_id, draft.recipient_id, self._approvers):
            errors["recipient"] = (
                "No approver other than you and the recipient is configured, so nobody could "
                "approve this. Ask your Slack admin to add one."
            )
        message = (draft.message or "").strip()
        if not message:
            errors["message"] = "Say what the reward is for."
        elif len(message) > slack_views.MESSAGE_MAX_CHARS:
            errors["message"] = (
                f"Keep the message under {slack_views.MESSAGE_MAX_CHARS} characters."
            )
        product = await self._catalog.find(draft.product_key) if draft.product_key else None
        if product is None:
            errors["card"] = (
                "Pick a card type."
                if not draft.product_key
                else "That card type is no longer offered; pick another."
            )
        else:
            try:
                amount = parse_amount(draft.amount_text or "", product.currency)
            except ValueError as exc:
                errors["amount"] = str(exc)
            else:
                if not product.allows(amount):
                    errors["amount"] = (
                        f"{product.name} is available for {product.describe_allowed()}."
                    )
        if errors:
            raise InvalidRequest(errors)
        assert product is not None and draft.recipient_id is not None
        return await self._store.create_request(
            NewRewardRequest(
                requester_id=draft.requester_id,
                recipient_id=draft.recipient_id,
                origin_channel_id=draft.origin_channel_id,
                face_value=Money(amount=amount, currency=product.currency),
                provider=product.provider,
                product_id=product.product_id,
                product_name=product.name,
                message=message,
            ),
            draft.submission_key,
        )

    async def _recipient_error(self, draft: RewardDraft) -> str | None:
        if not draft.recipient_id:
            return "Pick who receives the reward."
        if draft.recipient_id == draft.requester_id:
            return "You cannot reward yourself."
        try:
            recipient = await self._gateway.user(draft.recipient_id)
        except UnknownUser:
            return "That person is not in this workspace."
        if recipient.is_bot or recipient.id == _SLACKBOT:
            return "Bots cannot receive rewards; pick a person."
        if recipient.deleted:
            return "That person's account is deactivated."
        return None

    async def decidable(self, request_id: int, actor: str) -> RewardRequest:
        """The request, if ``actor`` may decide it now. Raises NotAllowed or AlreadyDecided."""
        request = await self._store.get(request_id)
        refusal = policy.refusal_to_decide(request, actor, self._approvers)
        if refusal:
            raise NotAllowed(refusal)
        if request.status is not Status.PENDING_APPROVAL:
            raise _already_decided(request, actor)
        return request

    async def approve(self, request_id: int, actor: str) -> RewardRequest:
        """Record the approval and queue its fulfilment, in one transaction."""
        await self.decidable(request_id, actor)
        won = await self._store.transition(
            request_id,
            Status.PENDING_APPROVAL,
            Status.APPROVED,
            actor,
            then=[JobKind.FULFIL],
            decided_by=actor,
            # Created and stored with the approval, before any provider call, so every retry
            # of this order (after a timeout, a crash, a restart) reuses it.
            idempotency_key=_new_idempotency_key(request_id),
        )
        return await self._decided(request_id, actor, won)

    async def reject(self, request_id: int, actor: str, reason: str | None) -> RewardRequest:
        """Record the rejection (its announcement is queued with it)."""
        await self.decidable(request_id, actor)
        reason = (reason or "").strip()[: slack_views.REASON_MAX_CHARS] or None
        won = await self._store.transition(
            request_id,
            Status.PENDING_APPROVAL,
            Status.REJECTED,
            actor,
            detail={"reason": reason} if reason else None,
            decided_by=actor,
            decision_reason=reason,
        )
        return await self._decided(request_id, actor, won)

    async def order_again(self, request_id: int, actor: str) -> RewardRequest:
        """After review found no card was issued: order again, under a new idempotency key
        (the old one may be refused by the provider as a conflict). Refused once the provider
        gave an order id: that order exists, so it is checked again instead."""
        request = await self._reviewable(request_id, actor)
        if request.provider_order_id is not None:
            raise NotAllowed(
                f"{request.provider} has order {request.provider_order_id} for this reward: "
                "use Check again, so the card is not bought twice."
            )
        won = await self._store.transition(
            request_id,
            Status.NEEDS_REVIEW,
            Status.APPROVED,
            actor,
            detail={"review": "order again"},
            then=[JobKind.FULFIL],
            idempotency_key=_new_idempotency_key(request_id),
            provider_order_id=None,
            delivery_started_at=None,
            failure_reason=None,
        )
        return await self._decided(request_id, actor, won)

    async def check_again(self, request_id: int, actor: str) -> RewardRequest:
        """After review: look the existing order up again and deliver it if it is ready."""
        await self._reviewable(request_id, actor)
        won = await self._store.transition(
            request_id,
            Status.NEEDS_REVIEW,
            Status.ORDERING,
            actor,
            detail={"review": "check again"},
            then=[JobKind.FULFIL],
            failure_reason=None,
        )
        return await self._decided(request_id, actor, won)

    async def resolve(self, request_id: int, actor: str) -> RewardRequest:
        """After review settled the request outside the bot (card sent or refunded by hand)."""
        await self._reviewable(request_id, actor)
        won = await self._store.transition(
            request_id,
            Status.NEEDS_REVIEW,
            Status.RESOLVED,
            actor,
            detail={"review": "resolved by hand"},
        )
        return await self._decided(request_id, actor, won)

    async def _reviewable(self, request_id: int, actor: str) -> RewardRequest:
        request = await self._store.get(request_id)
        refusal = policy.refusal_to_decide(request, actor, self._approvers)
        if refusal:
            raise NotAllowed(refusal)
        if request.status is not Status.NEEDS_REVIEW:
            raise AlreadyDecided(
                f"Reward #{request.id} is no longer waiting for review.", request.status
            )
        return request

    async def _decided(self, request_id: int, actor: str, won: bool) -> RewardRequest:
        request = await self._store.get(request_id)
        if not won:
            raise _already_decided(request, actor)
        return request

    async def tell(self, channel: str, user_id: str, text: str) -> None:
        """Answer one user privately: ephemeral where they are, else by DM."""
        try:
            await self._gateway.ephemeral(channel, user_id, text)
            return
        except SLACK_FAILURES as exc:
            log.info("ephemeral to %s in %s failed (%r); sending a DM", user_id, channel, exc)
        try:
            await self._gateway.dm(user_id, text)
        except SLACK_FAILURES as exc:
            log.warning("could not tell %s: %r", user_id, exc)


def _new_idempotency_key(request_id: int) -> str:
    return f"rewardbot-{request_id}-{uuid.uuid4().hex}"


def _already_decided(request: RewardRequest, actor: str) -> AlreadyDecided:
    verb = "rejected" if request.status is Status.REJECTED else "approved"
    if request.decided_by == actor:
        return AlreadyDecided(f"You already {verb} reward #{request.id}.", request.status)
    who = f" by <@{request.decided_by}>" if request.decided_by else ""
    return AlreadyDecided(f"Reward #{request.id} was already {verb}{who}.", request.status)
