"""A manager asks for a reward: the form is checked, routed by the policy and stored."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.catalog import Catalog
from bot.domain import MAX_RECIPIENTS, FormField, Money, NewRewardRequest, RewardRequest
from bot.errors import InvalidRequest, OverBudget
from bot.policy.rules import Policy
from bot.rewards.draft import CheckedDraft, RewardDraft, delivery_time, message_error, priced
from bot.rewards.replies import Replies
from bot.rewards.routing import Routing
from bot.slack.gateway import SLACK_FAILURES, SlackGateway, UnknownUser
from bot.slack.messages import submitted
from bot.store import JobKind, Store

log = logging.getLogger(__name__)

# Slackbot is reported with is_bot false, but it cannot receive a DM from the bot.
_SLACKBOT = "USLACKBOT"


class RewardIntake:
    """Validates and stores reward requests; storing queues their announcement."""

    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        gateway: SlackGateway,
        policy: Policy,
        replies: Replies,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._gateway = gateway
        self._policy = policy
        self._routing = Routing(policy)
        self._replies = replies

    async def can_be_approved(self, requester_id: str) -> bool:
        """Whether anyone other than the requester can approve their requests."""
        try:
            team = await self._policy.team_of(requester_id)
            return bool(await self._policy.first_approvers(requester_id, None, team))
        except SLACK_FAILURES as exc:
            # The submission checks again; do not refuse someone over a Slack hiccup.
            log.warning("could not read the policy's user groups: %r", exc)
            return True

    async def request_reward(self, draft: RewardDraft) -> tuple[list[RewardRequest], bool]:
        """Validate and store a request, one per recipient; returns them and whether they are
        new (a resubmission of the same modal returns the stored ones). Raises
        :class:`InvalidRequest`, storing nothing."""
        checked = await self._checked(draft)
        try:
            team = await self._policy.team_of(draft.requester_id)
            news = await self._routed(draft, checked, team)
            return await self._store.create_requests(
                news,
                draft.submission_key,
                limits=self._policy.budget_limits(team, "your"),
                scheduled=self._deadline_jobs(),
            )
        except OverBudget as over:
            raise InvalidRequest({FormField.AMOUNT: str(over)}) from None
        except SLACK_FAILURES as exc:
            log.warning("could not read the policy's user groups: %r", exc)
            raise InvalidRequest(
                {
                    FormField.RECIPIENT: "Could not check who approves this "
                    "(Slack did not answer). Please submit again."
                }
            ) from None

    def _deadline_jobs(self) -> dict[JobKind, datetime]:
        """The reminder and expiry jobs of a request made now, at the policy's times."""
        remind_at, expire_at = self._policy.decision_deadlines(datetime.now(UTC))
        jobs = {JobKind.REMIND: remind_at, JobKind.EXPIRE: expire_at}
        return {kind: when for kind, when in jobs.items() if when is not None}

    async def confirm_submitted(self, batch: list[RewardRequest]) -> None:
        """Tell the requester, the moment the modal closes, who decides and what happens next."""
        request = batch[0]
        try:
            deciders = await self._policy.batch_deciders(batch)
        except SLACK_FAILURES as exc:
            log.warning("could not read the policy's user groups: %r", exc)
            deciders = []
        await self._replies.tell(
            request.origin_channel_id,
            request.requester_id,
            submitted(batch, deciders),
        )

    async def _checked(self, draft: RewardDraft) -> CheckedDraft:
        """The draft with every field valid; raises :class:`InvalidRequest` naming each field
        that is not."""
        errors: dict[FormField, str] = {}
        if problem := await self._person_error(draft.requester_id, draft.recipient_id):
            errors[FormField.RECIPIENT] = problem
        extras = [r for r in dict.fromkeys(draft.more_recipient_ids) if r != draft.recipient_id]
        if problem := await self._extras_error(draft.requester_id, extras):
            errors[FormField.MORE_RECIPIENTS] = problem
        message = (draft.message or "").strip()
        if problem := message_error(message):
            errors[FormField.MESSAGE] = problem
        deliver_at = None
        if draft.deliver_at is not None:
            deliver_at, problem = delivery_time(draft.deliver_at)
            if problem:
                errors[FormField.DELIVER_AT] = problem
        product = await self._catalog.find(draft.product_key) if draft.product_key else None
        face_values: list[Money] = []
        own_amount_errors: dict[str, str] = {}
        if product is None:
            errors[FormField.CARD] = (
                "Pick a card type."
                if not draft.product_key
                else "That card type is no longer offered; pick another."
            )
        else:
            face_values, amount_errors, own_amount_errors = priced(product, draft, extras)
            errors.update(amount_errors)
        if errors or own_amount_errors:
            raise InvalidRequest(errors, own_amount_errors)
        assert product is not None and draft.recipient_id
        return CheckedDraft(
            requester_id=draft.requester_id,
            origin_channel_id=draft.origin_channel_id,
            recipients=(draft.recipient_id, *extras),
            face_values=tuple(face_values),
            product=product,
            message=message,
            deliver_at=deliver_at,
        )

    async def _routed(
        self, draft: RewardDraft, checked: CheckedDraft, team: str | None
    ) -> list[NewRewardRequest]:
        """One new request per recipient, each routed by the policy."""
        news: list[NewRewardRequest] = []
        for recipient, face_value in zip(checked.recipients, checked.face_values, strict=True):
            try:
                news.append(await self._routing.route(checked, recipient, face_value, team))
            except InvalidRequest as invalid:
                if recipient == draft.recipient_id:
                    raise
                raise _as_extra_person(invalid, recipient, draft) from None
        if len(news) > 1:
            # Decided together, so approved the same way: by two if any of them needs two.
            required = max(n.approvals_required for n in news)
            news = [n.model_copy(update={"approvals_required": required}) for n in news]
            await self._routing.check_batch(news)
        return news

    async def _extras_error(self, requester_id: str, extras: list[str]) -> str | None:
        if len(extras) + 1 > MAX_RECIPIENTS:
            return f"Reward at most {MAX_RECIPIENTS} people in one request."
        for extra in extras:
            if problem := await self._person_error(requester_id, extra):
                try:
                    name = (await self._gateway.user(extra)).display_name
                except UnknownUser:
                    name = extra
                return f"{name}: {problem}"
        return None

    async def _person_error(self, requester_id: str, recipient_id: str | None) -> str | None:
        if not recipient_id:
            return "Pick who receives the reward."
        if recipient_id == requester_id and not self._policy.allows_self_reward:
            return "You cannot reward yourself."
        try:
            recipient = await self._gateway.user(recipient_id)
        except UnknownUser:
            return "That person is not in this workspace."
        if recipient.is_bot or recipient.id == _SLACKBOT:
            return "Bots cannot receive rewards; pick a person."
        if recipient.deleted:
            return "That person's account is deactivated."
        return None


def _as_extra_person(invalid: InvalidRequest, person: str, draft: RewardDraft) -> InvalidRequest:
    """A refusal about an extra person: what concerns them belongs to the field that names
    them, and what concerns their own amount to that amount."""
    errors = dict(invalid.field_errors)
    if FormField.RECIPIENT in errors:
        errors[FormField.MORE_RECIPIENTS] = errors.pop(FormField.RECIPIENT)
    own = {}
    if person in draft.amounts_for and FormField.AMOUNT in errors:
        own[person] = errors.pop(FormField.AMOUNT)
    return InvalidRequest(errors, own)
