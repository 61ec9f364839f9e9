"""The use cases behind the Slack surfaces: request a reward, approve, reject or cancel it."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict

from bot.catalog import Catalog
from bot.domain import (
    AWAITING_DECISION,
    MAX_RECIPIENTS,
    MESSAGE_MAX_CHARS,
    REASON_MAX_CHARS,
    Money,
    NewRewardRequest,
    RewardRequest,
    Status,
    can_cancel,
    parse_amount,
)
from bot.errors import AlreadyDecided, InvalidRequest, NotAllowed, OverBudget
from bot.policy.rules import NoExchangeRate, Policy
from bot.slack.gateway import SLACK_FAILURES, SlackGateway, UnknownUser
from bot.slack.ids import amount_block
from bot.slack.messages import submitted
from bot.slack.text import escape
from bot.store import BudgetLimit, Change, JobKind, Store
from providers.base import Product, Provider
from providers.errors import OrderRefused, ProviderError

log = logging.getLogger(__name__)

# Approved closer than this to its delivery time, a card the provider could schedule itself is
# held by the bot instead: it could hardly be cancelled at the provider in time.
NATIVE_SCHEDULE_LEAD = timedelta(minutes=10)

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
    # The date and time picked for delivery (Unix seconds), or ``None`` for as soon as approved.
    deliver_at: int | None = None
    # Bulk rewards: more people to give the same card, each their own.
    more_recipient_ids: tuple[str, ...] = ()
    # Their own amounts, where given (user id → amount typed); the others get ``amount_text``.
    amounts_for: Mapping[str, str] = {}


class RewardService:
    """Validates, stores and decides reward requests; approval queues the fulfilment job."""

    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        gateway: SlackGateway,
        policy: Policy,
        providers: Mapping[str, Provider],
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._gateway = gateway
        self._policy = policy
        self._providers = providers

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
        errors: dict[str, str] = {}
        recipient_error = await self._person_error(draft.requester_id, draft.recipient_id)
        if recipient_error:
            errors["recipient"] = recipient_error
        extras = [r for r in dict.fromkeys(draft.more_recipient_ids) if r != draft.recipient_id]
        if extras_error := await self._extras_error(draft.requester_id, extras):
            errors["more_recipients"] = extras_error
        message = (draft.message or "").strip()
        if not message:
            errors["message"] = "Say what the reward is for."
        elif len(message) > MESSAGE_MAX_CHARS:
            errors["message"] = f"Keep the message under {MESSAGE_MAX_CHARS} characters."
        deliver_at = None
        if draft.deliver_at is not None:
            deliver_at, problem = _delivery_time(draft.deliver_at)
            if problem:
                errors["deliver_at"] = problem
        product = await self._catalog.find(draft.product_key) if draft.product_key else None
        recipients = [draft.recipient_id, *extras]
        face_values: list[Money] = []
        if product is None:
            errors["card"] = (
                "Pick a card type."
                if not draft.product_key
                else "That card type is no longer offered; pick another."
            )
        else:
            try:
                face_values = _face_values(product, draft.amount_text or "", len(recipients))
            except ValueError as exc:
                errors["amount"] = str(exc)
            if draft.amounts_for and len(set(face_values)) > 1:
                errors["amount"] = (
                    "Give one amount here when you give people their own amounts below."
                )
            for index, person in enumerate(extras, start=1):
                own = draft.amounts_for.get(person)
                if own is not None and face_values:
                    try:
                        face_values[index] = _face_value(product, own)
                    except ValueError as exc:
                        errors[amount_block(person)] = str(exc)
        if errors:
            raise InvalidRequest(errors)
        assert product is not None and draft.recipient_id
        try:
            team = await self._policy.team_of(draft.requester_id)
            news: list[NewRewardRequest] = []
            for recipient, face_value in zip(recipients, face_values, strict=True):
                assert recipient is not None
                try:
                    new = await self._apply_policy(
                        draft, recipient, message, product, face_value, deliver_at, team
                    )
                except InvalidRequest as invalid:
                    if recipient == draft.recipient_id:
                        raise
                    # The recipient-specific refusals of an extra person belong to their field,
                    # and those about their own amount to that.
                    fields = {"recipient": "more_recipients"}
                    if recipient in draft.amounts_for:
                        fields["amount"] = amount_block(recipient)
                    raise InvalidRequest(
                        {fields.get(k, k): v for k, v in invalid.field_errors.items()}
                    ) from None
                news.append(new)
            if len(news) > 1:
                # Decided together, so approved the same way: by two if any of them needs two.
                required = max(n.approvals_required for n in news)
                news = [n.model_copy(update={"approvals_required": required}) for n in news]
                await self._check_batch_can_be_decided([_as_pending(n) for n in news])
            return await self._store.create_requests(
                news,
                draft.submission_key,
                limits=self._limits_for(team, "your"),
                scheduled=self._deadlines(),
            )
        except OverBudget as over:
            raise InvalidRequest({"amount": str(over)}) from None
        except SLACK_FAILURES as exc:
            log.warning("could not read the policy's user groups: %r", exc)
            raise InvalidRequest(
                {
                    "recipient": "Could not check who approves this (Slack did not answer). "
                    "Please submit again."
                }
            ) from None

    async def _apply_policy(
        self,
        draft: RewardDraft,
        recipient_id: str,
        message: str,
        product: Product,
        face_value: Money,
        deliver_at: datetime | None,
        team: str | None,
    ) -> NewRewardRequest:
        """Route the request for ``recipient_id`` (the requester is in ``team``) and check its
        limits; raises :class:`InvalidRequest`."""
        policy, rules = self._policy, self._policy.rules
        now = datetime.now(UTC)
        errors: dict[str, str] = {}
        first = await policy.first_approvers(draft.requester_id, recipient_id, team)
        if not first:
            errors["recipient"] = (
                "No approver other than you and the recipient is configured, so nobody could "
                "approve this. Ask your Slack admin to add one."
            )
        budget_amount = None
        try:
            budget_amount = policy.in_policy_currency(face_value)
        except NoExchangeRate:
            errors["amount"] = (
                f"No exchange rate from {face_value.currency} to {rules.currency} is "
                f"configured, so this card cannot be checked against the limits. Pick a "
                f"{rules.currency} card, or ask your Slack admin to add the rate."
            )
        maximum = policy.money(rules.approvals.max_amount)
        if budget_amount and maximum and budget_amount.amount > maximum.amount:
            converted = f" ({face_value} is {budget_amount})" if budget_amount != face_value else ""
            errors["amount"] = f"A single reward can be at most {maximum}{converted}."
        approvals_required = policy.approvals_required(budget_amount)
        if first and approvals_required > 1:
            second = await policy.second_approvers(draft.requester_id, recipient_id, team)
            if not any(a != b for a in first for b in second):
                errors["amount"] = (
                    f"Rewards above {policy.money(rules.approvals.second_approval_above)} need "
                    "a second approver, and nobody else is configured to give it for this "
                    "reward. Ask for less, or ask your Slack admin."
                )
        if errors:
            raise InvalidRequest(errors)
        new = NewRewardRequest(
            requester_id=draft.requester_id,
            recipient_id=recipient_id,
            origin_channel_id=draft.origin_channel_id,
            face_value=face_value,
            provider=product.provider,
            product_id=product.product_id,
            product_name=product.name,
            message=message,
            team=team,
            approvals_required=approvals_required,
            budget_amount=budget_amount,
            budget_month=policy.month_of(now) if budget_amount else None,
            deliver_at=deliver_at,
        )
        return new

    def _limits_for(self, team: str | None, requester: str) -> list[BudgetLimit]:
        """The monthly budgets a team member's request counts against; ``requester`` names
        the requester's own budget in a refusal ("your", "<@U123>'s")."""
        policy, rules = self._policy, self._policy.rules
        limits = []
        team_policy = rules.teams.get(team) if team else None
        if team_budget := policy.money(team_policy.monthly_budget if team_policy else None):
            limits.append(BudgetLimit(owner=f"team {team}'s", team=team, limit=team_budget))
        if requester_budget := policy.money(rules.budgets.per_requester_monthly):
            limits.append(BudgetLimit(owner=requester, team=None, limit=requester_budget))
        return limits

    async def _check_batch_can_be_decided(self, batch: list[RewardRequest]) -> None:
        """Someone must be able to approve all of them together, and, if two approvals are
        needed, someone else the second."""
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
                {"more_recipients": f"{problem}recipient). Request them separately."}
            )

    def _deadlines(self) -> dict[JobKind, datetime]:
        now = datetime.now(UTC)
        approvals = self._policy.rules.approvals
        deadlines = {}
        if approvals.remind_after_hours is not None:
            deadlines[JobKind.REMIND] = now + timedelta(hours=approvals.remind_after_hours)
        if approvals.expire_after_hours is not None:
            deadlines[JobKind.EXPIRE] = now + timedelta(hours=approvals.expire_after_hours)
        return deadlines

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
        if recipient_id == requester_id and not self._policy.rules.approvals.allow_self_reward:
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

    async def decidable(self, request_id: int, actor: str) -> RewardRequest:
        """The request, if ``actor`` may decide it now. Raises NotAllowed or AlreadyDecided."""
        request = await self._store.get(request_id)
        await self._refuse_unless_allowed(request, actor)
        if request.status not in AWAITING_DECISION:
            raise _already_decided(request, actor)
        return request

    async def _refuse_unless_allowed(self, request: RewardRequest, actor: str) -> None:
        try:
            refusal = await self._policy.refusal_to_decide(request, actor)
        except SLACK_FAILURES as exc:
            log.warning("could not read the policy's user groups: %r", exc)
            raise NotAllowed(
                "Could not check that you are an approver (Slack did not answer). Try again."
            ) from None
        if refusal:
            raise NotAllowed(refusal)

    async def approve(self, request_id: int, actor: str) -> RewardRequest:
        """Record an approval of the request and its whole batch. The last approval needed
        queues the fulfilment in the same transaction; a first of two waits for a different
        approver."""

        def approvals(batch: list[RewardRequest]) -> list[Change]:
            if batch[0].status is Status.PENDING_APPROVAL and batch[0].approvals_required > 1:
                return [
                    Change(
                        member.id,
                        member.status,
                        Status.AWAITING_SECOND_APPROVAL,
                        {"approval": "first of two"},
                        columns={"first_approved_by": actor},
                    )
                    for member in batch
                ]
            shared = self._shared_orders(batch)
            return [
                Change(
                    member.id,
                    member.status,
                    Status.APPROVED,
                    {"approval": "second of two" if member.approvals_required > 1 else "only"},
                    # A shared order's fulfilment is queued once, on its owner.
                    then=(JobKind.FULFIL,) if _owns_its_order(member, shared) else (),
                    then_at=self._order_time(member),
                    columns={
                        "decided_by": actor,
                        # Created and stored with the approval, before any provider call, so
                        # every retry of this order (after a timeout, a crash, a restart)
                        # reuses it; a shared order's key is its ``order_key``.
                        "idempotency_key": _new_idempotency_key(member.id),
                        **shared.get(member.id, {}),
                    },
                )
                for member in batch
            ]

        return await self._decide_batch(request_id, actor, approvals)

    def _shared_orders(self, batch: list[RewardRequest]) -> dict[int, dict[str, str | int]]:
        """Group a batch into as few provider orders as its provider takes: for each request
        of a shared order, its ``order_key`` and ``order_owner`` (absent: ordered alone)."""
        provider = self._providers.get(batch[0].provider)
        size = provider.max_recipients_per_order if provider is not None else 1
        shared: dict[int, dict[str, str | int]] = {}
        for start in range(0, len(batch), size):
            members = batch[start : start + size]
            if len(members) > 1:
                owner = members[0].id
                key = _new_idempotency_key(owner)
                for member in members:
                    shared[member.id] = {"order_key": key, "order_owner": owner}
        return shared

    async def reject(self, request_id: int, actor: str, reason: str | None) -> RewardRequest:
        """Record the rejection of the request and its whole batch."""
        reason = (reason or "").strip()[:REASON_MAX_CHARS] or None
        return await self._decide_batch(
            request_id,
            actor,
            lambda batch: [
                Change(
                    member.id,
                    member.status,
                    Status.REJECTED,
                    {"reason": reason} if reason else {},
                    columns={"decided_by": actor, "decision_reason": reason},
                )
                for member in batch
            ],
        )

    def _order_time(self, request: RewardRequest) -> datetime | None:
        """When to place an approved order: at once, unless it is scheduled and the bot holds
        it until then (a provider that schedules natively gets it at once, with the time)."""
        when = request.deliver_at
        provider = self._providers.get(request.provider)
        if when is None or when <= datetime.now(UTC):
            return None
        native = provider is not None and provider.schedules_natively
        return None if native and when > datetime.now(UTC) + NATIVE_SCHEDULE_LEAD else when

    async def _decide_batch(
        self,
        request_id: int,
        actor: str,
        changes_for: Callable[[list[RewardRequest]], list[Change]],
    ) -> RewardRequest:
        """Decide a request and the rest of its batch in one transaction. The actor must be
        allowed to decide every one of them; a decision that races with another one (or with
        a cancellation or expiry) changes all of them or none."""
        request = await self.decidable(request_id, actor)
        batch = await self._store.batch(request)
        for member in batch:
            if member.status is not request.status:
                raise _already_decided(member, actor)
            if member.id != request.id:
                await self._refuse_unless_allowed(member, actor)
        changes = changes_for(batch)
        first_of_two = changes[0].to is Status.AWAITING_SECOND_APPROVAL
        second = await self._policy.batch_second_deciders(batch) if first_of_two else []
        if first_of_two and len(batch) > 1 and not [a for a in second if a != actor]:
            raise NotAllowed(
                "These rewards need two approvals and only you can give the second, so "
                "another approver must give the first."
            )
        won = await self._store.transition_all(changes, actor)
        return await self._decided(request.id, actor, won)

    async def cancel(self, request_id: int, actor: str) -> RewardRequest:
        """The requester withdraws a request (with its whole batch) nobody has finished
        deciding, or a scheduled reward not yet sent: held by the bot until the order starts,
        or scheduled at the provider until its cut-off (the provider cancels it first)."""
        request = await self._store.get(request_id)
        if actor != request.requester_id:
            raise NotAllowed("Only the person who asked for this reward can cancel it.")
        batch = await self._store.batch(request)
        if not all(can_cancel(m, datetime.now(UTC)) for m in batch):
            if any(m.status in (Status.APPROVED, Status.ORDERING, Status.FULFILLED) for m in batch):
                raise AlreadyDecided(
                    f"Reward #{request.id} is already being ordered or sent, so it can no "
                    "longer be cancelled.",
                    request.status,
                )
            raise _already_decided(request, actor)
        # A shared provider order is cancelled once, for all its requests.
        ordered = {m.provider_order_id: m for m in batch if m.status is Status.ORDERING}
        for member in ordered.values():
            await self._cancel_at_provider(member)
        won = await self._store.transition_all(
            [Change(m.id, m.status, Status.CANCELLED, {"by": "requester"}) for m in batch], actor
        )
        return await self._decided(request.id, actor, won)

    async def _cancel_at_provider(self, request: RewardRequest) -> None:
        provider = self._providers.get(request.provider)
        if provider is None or request.provider_order_id is None:
            raise NotAllowed(
                f"Reward #{request.id} is being ordered right now; try again in a minute."
            )
        try:
            await provider.cancel_order(request.provider_order_id)
        except OrderRefused as refusal:
            raise NotAllowed(
                f"{request.provider} can no longer cancel reward #{request.id}: "
                f"{escape(refusal.message)}"
            ) from None
        except ProviderError as exc:
            log.warning("cancelling request %s at %s failed: %r", request.id, provider.name, exc)
            raise NotAllowed(
                f"{request.provider} did not answer, so reward #{request.id} is not cancelled. "
                "Try again in a minute."
            ) from None

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
            {"order_key": _new_idempotency_key(owner), "order_owner": owner} if owner else {}
        )
        changes = [
            Change(
                member.id,
                Status.NEEDS_REVIEW,
                Status.APPROVED,
                {"review": "order again"},
                then=(JobKind.FULFIL,) if member is together[0] else (),
                then_for=owner,
                columns={**_new_order(member.id), **shared},
            )
            for member in together
        ]
        won = await self._store.transition_all(changes, actor)
        return await self._decided(request_id, actor, won)

    async def retry(self, request_id: int, actor: str) -> RewardRequest:
        """An approver orders a failed reward again, under a new idempotency key. The failure
        released its budget, so the retry reserves it again (or is refused)."""
        request = await self._store.get(request_id)
        await self._refuse_unless_allowed(request, actor)
        if request.status is not Status.FAILED:
            raise AlreadyDecided(f"Reward #{request.id} has not failed.", request.status)
        limits = self._limits_for(request.team, f"<@{request.requester_id}>'s")
        try:
            change = Change(
                request_id,
                Status.FAILED,
                Status.APPROVED,
                {"retry": "after failure", "failure": request.failure_reason},
                then=(JobKind.FULFIL,),
                columns={**_new_order(request_id), "decided_by": actor},
            )
            won = await self._store.transition_all(
                [change], actor, reserve=limits if request.budget_amount else ()
            )
        except OverBudget as over:
            raise NotAllowed(f"Cannot retry reward #{request.id}: {over}") from None
        return await self._decided(request_id, actor, won)

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
        return await self._decided(request_id, actor, won)

    async def resolve(self, request_id: int, actor: str) -> RewardRequest:
        """After review settled the request outside the bot (card sent or refunded by hand)."""
        together = await self._reviewable(request_id, actor)
        changes = [
            Change(member.id, Status.NEEDS_REVIEW, Status.RESOLVED, {"review": "resolved by hand"})
            for member in together
        ]
        won = await self._store.transition_all(changes, actor)
        return await self._decided(request_id, actor, won)

    async def _reviewable(self, request_id: int, actor: str) -> list[RewardRequest]:
        """The request waiting for review, with whoever must be reviewed with it: until the
        provider gives a shared order's id, its key may have been sent for all its requests,
        and a key must always carry the same people, so they move on together."""
        request = await self._store.get(request_id)
        await self._refuse_unless_allowed(request, actor)
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
                await self._refuse_unless_allowed(member, actor)
        return together

    async def _decided(self, request_id: int, actor: str, won: bool) -> RewardRequest:
        request = await self._store.get(request_id)
        if not won:
            raise _already_decided(request, actor)
        return request

    async def confirm_submitted(self, batch: list[RewardRequest]) -> None:
        """Tell the requester, the moment the modal closes, who decides and what happens next."""
        request = batch[0]
        try:
            deciders = await self._policy.batch_deciders(batch)
        except SLACK_FAILURES as exc:
            log.warning("could not read the policy's user groups: %r", exc)
            deciders = []
        await self.tell(
            request.origin_channel_id,
            request.requester_id,
            submitted(batch, deciders),
        )

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


def _owns_its_order(request: RewardRequest, shared: dict[int, dict[str, str | int]]) -> bool:
    """Whether the request's fulfilment places its order: alone, or as the shared order's
    owner."""
    return shared.get(request.id, {}).get("order_owner", request.id) == request.id


def _new_order(request_id: int) -> dict[str, str | None]:
    """The columns that start a request's order afresh (order again, retry): a new key, on
    its own even if it was part of a shared order, and nothing left of the previous attempt's
    order or delivery."""
    return {
        "idempotency_key": _new_idempotency_key(request_id),
        "order_key": None,
        "order_owner": None,
        "provider_order_id": None,
        "delivery_started_at": None,
        "delivery_claim": None,
        "failure_reason": None,
    }


def _new_idempotency_key(request_id: int) -> str:
    return f"rewardbot-{request_id}-{uuid.uuid4().hex}"


# Scheduling closer than this could not be cancelled in practice; further is surely a typo.
_SOONEST_SCHEDULE = timedelta(minutes=10)
_LATEST_SCHEDULE = timedelta(days=366)


def _delivery_time(epoch: int) -> tuple[datetime | None, str | None]:
    """The picked delivery time, or why it cannot be used."""
    now = datetime.now(UTC)
    try:
        when = datetime.fromtimestamp(epoch, UTC)
    except (OverflowError, OSError, ValueError):
        return None, "That is not a date and time."
    if when < now + _SOONEST_SCHEDULE:
        return None, "Pick a time at least 10 minutes from now, or leave it empty to send now."
    if when > now + _LATEST_SCHEDULE:
        return None, "Pick a time within the next year."
    return when, None


def _as_pending(new: NewRewardRequest) -> RewardRequest:
    """A request as it will be stored, to ask the policy about it before storing it."""
    now = datetime.now(UTC)
    return RewardRequest(
        **new.model_dump(), id=0, status=Status.PENDING_APPROVAL, created_at=now, updated_at=now
    )


# "25; 40" or "25, 40": a comma followed by a space separates amounts, "1,250" is one amount.
_AMOUNT_SEPARATOR = re.compile(r"\s*;\s*|,\s+")


def _face_values(product: Product, amount_text: str, people: int) -> list[Money]:
    """One amount for everyone, or one per person in the order the form lists them."""
    texts = [t for t in _AMOUNT_SEPARATOR.split(amount_text.strip()) if t] or [""]
    if len(texts) not in (1, people):
        raise ValueError(
            f"Give one amount for everyone, or one for each of the {people} people, in order "
            "(recipient first), like 25; 40."
        )
    amounts = [_face_value(product, text) for text in texts]
    return amounts * people if len(amounts) == 1 else amounts


def _face_value(product: Product, text: str) -> Money:
    """One amount, which the card must be sold for."""
    amount = parse_amount(text, product.currency)
    if not product.allows(amount):
        raise ValueError(f"{product.name} is available for {product.describe_allowed()}.")
    return Money(amount=amount, currency=product.currency)


def _already_decided(request: RewardRequest, actor: str) -> AlreadyDecided:
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
