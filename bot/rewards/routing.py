"""Who must approve a new request, and whether the policy's limits let it be made at all."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.domain import FormField, Money, NewRewardRequest, RewardRequest, Status
from bot.errors import InvalidRequest
from bot.policy.rules import NoExchangeRate, Policy
from bot.rewards.draft import CheckedDraft


class Routing:
    """Applies the policy to a checked draft; every refusal is an :class:`InvalidRequest`."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy

    async def route(
        self, draft: CheckedDraft, recipient_id: str, face_value: Money, team: str | None
    ) -> NewRewardRequest:
        """The request for ``recipient_id`` (the requester is in ``team``), routed and within
        the limits."""
        policy = self._policy
        errors: dict[FormField, str] = {}
        first = await policy.first_approvers(draft.requester_id, recipient_id, team)
        if not first:
            errors[FormField.RECIPIENT] = (
                "No approver other than you and the recipient is configured, so nobody could "
                "approve this. Ask your Slack admin to add one."
            )
        budget_amount, amount_error = self._budget_amount(face_value)
        if amount_error:
            errors[FormField.AMOUNT] = amount_error
        approvals_required = policy.approvals_required(budget_amount)
        if first and approvals_required > 1:
            second = await policy.second_approvers(draft.requester_id, recipient_id, team)
            if not any(a != b for a in first for b in second):
                errors[FormField.AMOUNT] = (
                    f"Rewards above {policy.second_approval_above} need a second approver, and "
                    "nobody else is configured to give it for this reward. Ask for less, or ask "
                    "your Slack admin."
                )
        if errors:
            raise InvalidRequest(errors)
        return NewRewardRequest(
            requester_id=draft.requester_id,
            recipient_id=recipient_id,
            origin_channel_id=draft.origin_channel_id,
            face_value=face_value,
            provider=draft.product.provider,
            product_id=draft.product.product_id,
            product_name=draft.product.name,
            message=draft.message,
            team=team,
            approvals_required=approvals_required,
            budget_amount=budget_amount,
            budget_month=policy.month_of(datetime.now(UTC)) if budget_amount else None,
            deliver_at=draft.deliver_at,
        )

    def _budget_amount(self, face_value: Money) -> tuple[Money | None, str | None]:
        """What the card costs in the policy's currency, or why it cannot be allowed."""
        try:
            budget_amount = self._policy.in_policy_currency(face_value)
        except NoExchangeRate:
            currency = self._policy.currency
            return None, (
                f"No exchange rate from {face_value.currency} to {currency} is configured, so "
                f"this card cannot be checked against the limits. Pick a {currency} card, or "
                "ask your Slack admin to add the rate."
            )
        maximum = self._policy.max_reward
        if budget_amount and maximum and budget_amount.amount > maximum.amount:
            converted = f" ({face_value} is {budget_amount})" if budget_amount != face_value else ""
            return budget_amount, f"A single reward can be at most {maximum}{converted}."
        return budget_amount, None

    async def check_batch(self, news: list[NewRewardRequest]) -> None:
        """Someone must be able to approve all of them together, and, if two approvals are
        needed, someone else the second."""
        batch = [_as_pending(new) for new in news]
        first = await self._policy.batch_deciders(batch)
        problem = None
        if not first:
            problem = "Nobody can approve all of these rewards together (an approver is also a "
        elif batch[0].approvals_required > 1:
            second = await self._policy.batch_second_deciders(batch)
            if not any(a != b for a in first for b in second):
                problem = "These rewards need two approvals, and nobody else could give the "
                problem += "second for all of them (an approver is also a "
        if problem:
            raise InvalidRequest(
                {FormField.MORE_RECIPIENTS: f"{problem}recipient). Request them separately."}
            )


def _as_pending(new: NewRewardRequest) -> RewardRequest:
    """A request as it will be stored, to ask the policy about it before storing it."""
    now = datetime.now(UTC)
    return RewardRequest(
        **new.model_dump(), id=0, status=Status.PENDING_APPROVAL, created_at=now, updated_at=now
    )
