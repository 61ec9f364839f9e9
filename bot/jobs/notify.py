"""The ``notify`` job: shows a stored status change in Slack, retried until Slack takes it."""

from __future__ import annotations

from bot.domain import AWAITING_DECISION, RewardRequest, Status, decides_the_batch
from bot.policy.rules import Policy
from bot.rewards.home import HomeTab
from bot.slack.gateway import SlackGateway
from bot.slack.messages import second_approval_needed, thread_update
from bot.store import Job, Store


class Notifier:
    """Renders every announcement from stored state, so a retry shows the same thing."""

    def __init__(self, store: Store, gateway: SlackGateway, policy: Policy, home: HomeTab) -> None:
        self._store = store
        self._gateway = gateway
        self._policy = policy
        self._home = home

    async def run(self, job: Job) -> None:
        request = await self._store.get(job.request_id)
        status = Status(job.payload["status"])
        # Jobs queued before the previous status was recorded have none: an approval among them
        # is then announced for each request of a batch (other decisions need no "from").
        previous = Status(job.payload["from"]) if job.payload.get("from") else None
        is_head = request.batch_id in (None, request.id)
        batch_wide = request.batch_id is not None and decides_the_batch(previous, status)
        if batch_wide and not is_head:
            # The first request's job announces it for the whole batch (messages, thread,
            # requester, Home tabs): they all changed in one transaction.
            return
        if status is Status.PENDING_APPROVAL:
            await self._announce_new(request)
        else:
            batch = await self._store.batch(request) if batch_wide else ()
            await self._gateway.announce(request, status, batch)
        # A batch's cards belong to its first request, which is announced with the same change.
        if status is Status.AWAITING_SECOND_APPROVAL and is_head:
            await self._send_cards(request)
        await self._home.refresh_for(await self._store.get(request.id))

    async def _announce_new(self, request: RewardRequest) -> None:
        """Post the summary (the request's thread) where /reward was typed, then the approvers'
        cards. What a previous attempt already posted is not posted again."""
        if request.summary_ts is None:
            request = await self._gateway.post_summary(request)
            pending = request.model_copy(update={"status": Status.PENDING_APPROVAL})
            await self._gateway.reply_in_thread(request, thread_update(pending))
        await self._send_cards(request)

    async def _send_cards(self, request: RewardRequest) -> None:
        """A card for each approver of the request's current stage who has none yet, or one
        card in the approvals channel. Once decided, nobody new needs a card."""
        request = await self._store.get(request.id)
        if request.status not in AWAITING_DECISION:
            return
        carded = {card.approver_id: card for card in await self._store.approval_cards(request.id)}
        if channel := self._policy.approvals_channel:
            if channel not in carded:
                await self._gateway.post_approval_card(request, channel)
            elif request.status is Status.AWAITING_SECOND_APPROVAL:
                # The card was updated in place; the second approvers may not be watching it.
                card = carded[channel]
                deciders = await self._policy.batch_deciders(await self._store.batch(request))
                mentions = " ".join(f"<@{a}>" for a in deciders)
                await self._gateway.reply_to(
                    card.channel,
                    card.ts,
                    f"{mentions} {second_approval_needed(request)}",
                )
            return
        deciders = await self._policy.batch_deciders(await self._store.batch(request))
        await self._gateway.send_approval_cards(request, [a for a in deciders if a not in carded])
