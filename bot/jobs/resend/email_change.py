"""An approver's correction of the address a card is emailed to, and its confirmation.

An address other than where the card goes is only proposed: the recipient confirms it in a DM,
unless it is their Slack profile email now, and only then does the provider email it there.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from bot import clock
from bot.domain import RewardRequest, looks_like_email
from bot.errors import NotAllowed
from bot.jobs.resend.steps import RESEND_COOLDOWN, ResendSteps, masked_address
from bot.policy.rules import Policy
from bot.slack.gateway import SLACK_FAILURES, SlackGateway, UnknownUser
from bot.slack.lines import card_phrase
from bot.slack.messages import email_change_request
from bot.slack.text import escape
from bot.store import SYSTEM_ACTOR, EmailChange, EmailChangeOutcome, Job, Store, mask_email
from providers.base import Provider

log = logging.getLogger(__name__)

# How long a recipient has to confirm an address an approver proposed: a working day to see
# the DM, short enough that an old request cannot be confirmed by mistake much later.
CONFIRM_HOURS = 24


def _same(address: str | None, other: str | None) -> bool:
    """Whether two addresses are the same mailbox, as people type them."""
    return (address or "").strip().casefold() == (other or "").strip().casefold()


class EmailRedirect:
    """Approvers propose an address, recipients decide, and the job asks and redirects."""

    def __init__(
        self, store: Store, gateway: SlackGateway, policy: Policy, steps: ResendSteps
    ) -> None:
        self._store = store
        self._gateway = gateway
        self._policy = policy
        self._steps = steps

    # -- asked from Slack --------------------------------------------------------------------

    async def ask(self, request_id: int, actor: str, email: str) -> str:
        """An approver asks for the card to be emailed to ``email``: at once if it already goes
        there, else proposed to the recipient. Returns what to tell the approver now (the job
        tells them the rest). Touches only the database (the policy's user groups aside), as a
        modal's submission waits for it before Slack is answered."""
        address = email.strip()
        if not looks_like_email(address):
            raise NotAllowed("Enter one email address.")
        request, provider, order_id = await self.emailable(request_id, actor)
        masked = masked_address(address)
        if _same(address, request.recipient_email):
            # Where the card goes already: nothing changes, so nothing to confirm.
            if not await self._store.queue_resend(request.id, actor, RESEND_COOLDOWN):
                raise NotAllowed("It was resent less than a minute ago; wait before resending.")
            return f"Asking {provider.name} to email reward #{request.id} again to {masked}."
        await self._refuse_shared(request, order_id, address)
        expires_at = clock.now() + timedelta(hours=CONFIRM_HOURS)
        await self._store.propose_email_change(request.id, address, actor, expires_at)
        return (
            f"<@{request.recipient_id}> is asked to confirm {masked} in Slack: reward "
            f"#{request.id} is emailed there only once they do, within {CONFIRM_HOURS} hours "
            "(at once if it is their Slack email). You will hear how it ends."
        )

    async def confirm(self, change_id: int, actor: str) -> str:
        """The recipient confirms the proposed address: the provider's resend there is
        queued."""
        return await self._decide(change_id, actor, EmailChangeOutcome.CONFIRMED)

    async def decline(self, change_id: int, actor: str) -> str:
        """The recipient says the proposed address is not theirs: nothing is sent."""
        return await self._decide(change_id, actor, EmailChangeOutcome.DECLINED)

    async def _decide(self, change_id: int, actor: str, outcome: EmailChangeOutcome) -> str:
        # The button only names the change: who may decide it, and whether it still waits,
        # is read from the database.
        change = await self._store.email_change(change_id)
        request = await self._store.get(change.request_id)
        if actor != request.recipient_id:
            raise NotAllowed("Only the person who received this reward can say where it goes.")
        address = escape(change.email)
        if change.outcome is None and clock.now() >= change.expires_at:
            if await self._store.decide_email_change(
                change.id, EmailChangeOutcome.EXPIRED, SYSTEM_ACTOR
            ):
                await self._steps.tell(
                    change.requested_by,
                    f"<@{actor}> did not confirm {masked_address(change.email)} within "
                    f"{CONFIRM_HOURS} hours: reward #{request.id} was not sent there.",
                )
            return (
                f"This request has expired: nothing was sent to {address}. If the address is "
                "yours, ask an approver to start again."
            )
        if change.outcome is not None or not await self._store.decide_email_change(
            change.id, outcome, actor
        ):
            ended = (await self._store.email_change(change.id)).outcome
            return f"This request was already {ended or EmailChangeOutcome.EXPIRED}."
        if outcome is EmailChangeOutcome.CONFIRMED:
            return (
                f"Thank you: {request.provider} will email your card to {address}. You will "
                "get a message here when it has."
            )
        # A refused address may be someone trying to take the card: both of them hear of it.
        told = dict.fromkeys((change.requested_by, request.requester_id))
        for person in told:
            await self._steps.tell(
                person,
                f"<@{actor}> said {masked_address(change.email)} is not their address: reward "
                f"#{request.id} was not sent there.",
            )
        people = " and ".join(f"<@{person}>" for person in told)
        return f"Nothing was sent to {address}, and {people} have been told. Thank you."

    async def emailable(self, request_id: int, actor: str) -> tuple[RewardRequest, Provider, str]:
        """The request, its provider and order, if ``actor`` may have its card emailed to
        another address."""
        request = await self._store.get(request_id)
        try:
            reviewers = await self._policy.reviewers(request)
        except SLACK_FAILURES:
            raise NotAllowed("Could not check that you are an approver. Try again.") from None
        if actor not in reviewers:
            raise NotAllowed("Only an approver of this reward can resend it.")
        provider, order_id = self._steps.delivered(request)
        if not provider.can_resend:
            raise NotAllowed(f"{request.provider} cannot resend a card to another address.")
        return request, provider, order_id

    async def _refuse_shared(self, request: RewardRequest, order_id: str, address: str) -> None:
        """The provider finds a card of a shared order by its address: two cards at one
        address would be mixed up."""
        in_order = await self._store.requests_with_order(request.provider, order_id)
        if any(_same(address, r.recipient_email) for r in in_order if r.id != request.id):
            raise NotAllowed(
                "Another card of the same order already goes to that address; use a different one."
            )

    # -- in the resend job -------------------------------------------------------------------

    async def ask_recipient(self, job: Job, request: RewardRequest, change_id: int) -> str | None:
        """Have the recipient confirm a proposed address, unless it is their Slack email; what
        to tell the approver, ``None`` if what they were told when they asked holds."""
        change = await self._store.email_change(change_id)
        if change.outcome is not None:
            return None  # a run before this one got as far as its end
        if _same(change.email, await self._slack_email(request.recipient_id)):
            # Slack vouches for it as theirs, as it did for the order: the resend job it
            # queues tells the approver how it went.
            detail = {"as": "the recipient's Slack email"}
            confirmed = EmailChangeOutcome.CONFIRMED
            await self._store.decide_email_change(change.id, confirmed, SYSTEM_ACTOR, detail)
            return None
        text, blocks = email_change_request(request, change)
        await self._store.hold(job)  # the fence before the DM
        try:
            await self._gateway.dm(request.recipient_id, text, blocks)
        except SLACK_FAILURES as exc:
            log.warning("could not ask the recipient of request %s: %r", request.id, exc)
            # Nobody can confirm what they were never shown: ended, so it can be asked again.
            detail = {"reason": "the recipient could not be asked in Slack"}
            withdrawn = EmailChangeOutcome.WITHDRAWN
            await self._store.decide_email_change(change.id, withdrawn, SYSTEM_ACTOR, detail)
            return (
                f"Slack did not take the message asking <@{request.recipient_id}> to confirm "
                f"{masked_address(change.email)}: reward #{request.id} was not sent there. "
                "Ask again in a few minutes."
            )
        if request.requester_id != change.requested_by:
            await self._steps.tell(
                request.requester_id,
                f"<@{change.requested_by}> asked for reward #{request.id} "
                f"({card_phrase(request)}) to be emailed to {masked_address(change.email)} "
                f"instead. It goes there only if <@{request.recipient_id}> confirms the address "
                "in Slack.",
            )
        return None

    async def _slack_email(self, user_id: str) -> str | None:
        """The user's Slack profile email now; ``None`` if Slack cannot say (then the
        recipient is asked, which is always safe)."""
        try:
            user = await self._gateway.user(user_id)
        except (*SLACK_FAILURES, UnknownUser) as exc:
            log.info("could not read %s's Slack email: %r", user_id, exc)
            return None
        return None if user.deleted else user.email

    async def redirect(
        self,
        job: Job,
        request: RewardRequest,
        provider: Provider,
        order_id: str,
        change: EmailChange,
    ) -> str:
        """Have the provider email the card to a confirmed address, which it goes to from now
        on; what to tell the approver who asked."""
        masked = masked_address(change.email)
        # Only what the database says was confirmed moves a card, never a job's payload.
        if change.outcome is not EmailChangeOutcome.CONFIRMED:
            return f"{masked} was not confirmed: reward #{request.id} was not sent there."
        try:
            # Another card of the order may have moved there since it was proposed.
            await self._refuse_shared(request, order_id, change.email)
        except NotAllowed as refusal:
            return f"Reward #{request.id} was not sent to {masked}: {refusal}"
        failed = await self._steps.provider_resend(job, request, provider, order_id, change.email)
        if failed is not None:
            return failed
        actor = str(job.payload["actor"])
        detail = {"to": f"email {mask_email(change.email)}", "change": change.id}
        await self._store.apply_email_change(change.id, actor, detail)
        vouched = (
            f"<@{request.recipient_id}> confirmed it"
            if change.decided_by == request.recipient_id
            else f"it is <@{request.recipient_id}>'s Slack email"
        )
        # Moving a card is sensitive: the recipient and the requester hear of it.
        notice = (
            f"{request.provider} is emailing reward #{request.id} ({card_phrase(request)}) to "
            f"{masked} from now on: <@{actor}> asked, and {vouched}."
        )
        for person in dict.fromkeys((request.recipient_id, request.requester_id)):
            await self._steps.tell(person, notice)
        return f"{request.provider} is emailing reward #{request.id} again to {masked}."
