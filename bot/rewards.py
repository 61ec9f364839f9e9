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
from bot.fulfillment import Fulfillment
from bot.slack_gateway import SLACK_FAILURES, SlackGateway, UnknownUser
from bot.store import Store

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
    """Validates, stores and decides reward requests, and hands approved ones to fulfillment."""

    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        gateway: SlackGateway,
        fulfillment: Fulfillment,
        approvers: Sequence[str],
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._gateway = gateway
        self._fulfillment = fulfillment
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

    async def announce(self, request: RewardRequest) -> None:
        """Post the request's summary (its thread) and send the approvers their cards.

        The cards go out even if the summary cannot be posted: the request must be decidable.
        """
        try:
            request = await self._gateway.post_summary(request)
            await self._gateway.reply_in_thread(request, slack_views.thread_update(request))
        except SLACK_FAILURES as exc:
            log.warning("could not post the summary of request %s: %r", request.id, exc)
        await self._gateway.send_approval_cards(
            request,
            policy.approvers_for(request.requester_id, request.recipient_id, self._approvers),
        )

    async def decidable(self, request_id: int, actor: str) -> RewardRequest:
        """The request, if ``actor`` may decide it now. Raises NotAllowed or AlreadyDecided."""
        request = await self._store.get(request_id)
        refusal = policy.refusal_to_decide(request, actor, self._approvers)
        if refusal:
            raise NotAllowed(refusal)
        if request.status is not Status.PENDING_APPROVAL:
            raise _already_decided(request)
        return request

    async def approve(self, request_id: int, actor: str) -> RewardRequest:
        """Record the approval; call :meth:`after_decision` next (after acking Slack)."""
        await self.decidable(request_id, actor)
        won = await self._store.transition(
            request_id,
            Status.PENDING_APPROVAL,
            Status.APPROVED,
            actor,
            decided_by=actor,
            # Created and stored with the approval, before any provider call, so every retry
            # of this order (after a timeout, a crash, a restart) reuses it.
            idempotency_key=f"rewardbot-{request_id}-{uuid.uuid4().hex}",
        )
        request = await self._store.get(request_id)
        if not won:
            raise _already_decided(request)
        return request

    async def reject(self, request_id: int, actor: str, reason: str | None) -> RewardRequest:
        """Record the rejection; call :meth:`after_decision` next (after acking Slack)."""
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
        request = await self._store.get(request_id)
        if not won:
            raise _already_decided(request)
        return request

    async def after_decision(self, request: RewardRequest) -> None:
        """Show the decision everywhere and, if approved, start fulfilling it."""
        try:
            await self._gateway.publish_status(request)
        finally:
            # Whatever happened in Slack, an approved request is ordered.
            if request.status is Status.APPROVED:
                self._fulfillment.submit(request.id)

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


def _already_decided(request: RewardRequest) -> AlreadyDecided:
    who = f" by <@{request.decided_by}>" if request.decided_by else ""
    verb = "rejected" if request.status is Status.REJECTED else "approved"
    return AlreadyDecided(f"Reward #{request.id} was already {verb}{who}.", request.status)
