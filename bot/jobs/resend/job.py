"""The ``resend`` job, and what Slack's listeners ask of it (they only check and queue)."""

from __future__ import annotations

from collections.abc import Mapping

from bot.domain import RewardRequest
from bot.errors import NotAllowed
from bot.jobs.resend.email_change import EmailRedirect
from bot.jobs.resend.steps import ResendSteps
from bot.jobs.resend.to_recipient import RecipientResend
from bot.policy.rules import Policy
from bot.slack.gateway import SlackGateway
from bot.store import Job, Store
from providers.base import Provider


class Redelivery:
    """One door for both resend flows: the recipient's own (:class:`RecipientResend`) and an
    approver's change of address (:class:`EmailRedirect`)."""

    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        gateway: SlackGateway,
        policy: Policy,
    ) -> None:
        self._store = store
        self._steps = ResendSteps(store, providers, gateway)
        self._recipient = RecipientResend(store, gateway, self._steps)
        self._redirect = EmailRedirect(store, gateway, policy, self._steps)

    # -- asked from Slack --------------------------------------------------------------------

    async def ask_for_recipient(self, request_id: int, actor: str) -> str:
        """The recipient asks for their card again; returns what to tell them now."""
        return await self._recipient.ask(request_id, actor)

    async def ask_for_email(self, request_id: int, actor: str, email: str) -> str:
        """An approver asks for the card to be emailed to ``email`` (see
        :meth:`EmailRedirect.ask`); returns what to tell them now."""
        return await self._redirect.ask(request_id, actor, email)

    async def confirm_email(self, change_id: int, actor: str) -> str:
        """The recipient confirms the proposed address: the provider's resend there is
        queued."""
        return await self._redirect.confirm(change_id, actor)

    async def decline_email(self, change_id: int, actor: str) -> str:
        """The recipient says the proposed address is not theirs: nothing is sent."""
        return await self._redirect.decline(change_id, actor)

    async def emailable(self, request_id: int, actor: str) -> tuple[RewardRequest, Provider, str]:
        """The request, its provider and order, if ``actor`` may have its card emailed to
        another address."""
        return await self._redirect.emailable(request_id, actor)

    # -- the resend job ----------------------------------------------------------------------

    async def run(self, job: Job) -> None:
        """Do what the job was queued for (ask the recipient to confirm an address, email the
        card to a confirmed one, or send it again where it goes) and tell the asker how it
        went. Never raises for the provider's or Slack's sake: run again, it would send the
        card again."""
        request = await self._store.get(job.request_id)
        try:
            provider, order_id = self._steps.delivered(request)
        except NotAllowed as refusal:
            answer: str | None = str(refusal)
        else:
            if "ask" in job.payload:
                answer = await self._redirect.ask_recipient(job, request, int(job.payload["ask"]))
            elif "change" in job.payload:
                change = await self._store.email_change(int(job.payload["change"]))
                answer = await self._redirect.redirect(job, request, provider, order_id, change)
            else:
                answer = await self._recipient.run(job, request, provider, order_id)
        if answer is not None:
            await self._steps.tell(str(job.payload["actor"]), answer)
