"""The ``notify`` job: shows a stored status change in Slack, retried until Slack takes it."""

from __future__ import annotations

from collections.abc import Sequence

from bot import policy, slack_views
from bot.domain import RewardRequest, Status
from bot.slack_gateway import SlackGateway
from bot.store import Job, Store


class Notifier:
    """Renders every announcement from stored state, so a retry shows the same thing."""

    def __init__(self, store: Store, gateway: SlackGateway, approvers: Sequence[str]) -> None:
        self._store = store
        self._gateway = gateway
        self._approvers = list(approvers)

    async def run(self, job: Job) -> None:
        request = await self._store.get(job.request_id)
        status = Status(job.payload["status"])
        if status is Status.PENDING_APPROVAL:
            await self._announce_new(request)
        else:
            await self._gateway.announce(request, status)

    async def _announce_new(self, request: RewardRequest) -> None:
        """Post the summary (the request's thread) where /reward was typed, then the approvers'
        cards. What a previous attempt already posted is not posted again."""
        if request.summary_ts is None:
            request = await self._gateway.post_summary(request)
            pending = request.model_copy(update={"status": Status.PENDING_APPROVAL})
            await self._gateway.reply_in_thread(request, slack_views.thread_update(pending))
        carded = {card.approver_id for card in await self._store.approval_cards(request.id)}
        await self._gateway.send_approval_cards(
            request,
            [
                approver
                for approver in policy.approvers_for(
                    request.requester_id, request.recipient_id, self._approvers
                )
                if approver not in carded
            ],
        )
