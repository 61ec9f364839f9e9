"""The App Home tab: requests waiting for you, your own requests, your teams' budgets.

Published with ``views.publish`` when a user opens the tab, and again for everyone involved
whenever one of their requests changes, so it always shows live status.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from bot.domain import AWAITING_DECISION, RewardRequest, month_title
from bot.policy.rules import Policy
from bot.reports import TeamSpend, month_spend
from bot.slack.gateway import SLACK_FAILURES, SlackGateway
from bot.slack.home import home_view
from bot.store import Store

log = logging.getLogger(__name__)

# A home tab holds at most 100 blocks: a waiting batch of 20 takes up to seven, so ten of them,
# ten own requests and ten budgets fit with the headings.
_MAX_WAITING = 10
_MAX_OWN = 10
_MAX_BUDGETS = 10


class HomeTab:
    def __init__(
        self, store: Store, gateway: SlackGateway, policy: Policy, *, sandbox: bool = False
    ) -> None:
        """``sandbox``: the sandbox provider is enabled (the tab says so)."""
        self._store = store
        self._gateway = gateway
        self._policy = policy
        self._sandbox = sandbox

    async def publish(self, user_id: str) -> None:
        await self._gateway.publish_home(user_id, await self.render(user_id))

    async def render(self, user_id: str) -> dict[str, Any]:
        waiting = []
        for request in await self._store.requests_in(AWAITING_DECISION):
            # A batch is shown, and decided, once: through its first request.
            if request.batch_id not in (None, request.id):
                continue
            batch = await self._store.batch(request)
            if user_id in await self._policy.batch_deciders(batch):
                waiting.append(batch)
        own = await self._store.recent_requests_by(user_id, _MAX_OWN)
        budgets: list[TeamSpend] = []
        month = self._policy.month_of(datetime.now(UTC))
        if self._policy.currency is not None:
            managed = await self._policy.teams_managed_by(user_id)
            budgets = [
                t for t in await month_spend(self._store, self._policy, month) if t.team in managed
            ]
        # The oldest waiting requests first: they are the closest to expiring.
        return home_view(
            waiting[:_MAX_WAITING],
            len(waiting),
            own,
            [t.describe() for t in budgets[:_MAX_BUDGETS]],
            month_title(month),
            sandbox=self._sandbox,
        )

    async def refresh_for(self, request: RewardRequest) -> None:
        """Republish the tab of everyone the request concerns. Best effort: a tab that fails
        to update is fixed the next time its owner opens it."""
        people = {request.requester_id, request.first_approved_by, request.decided_by}
        try:
            people.update(await self._policy.deciders(request))
        except SLACK_FAILURES as exc:
            log.warning("could not list the deciders of request %s: %r", request.id, exc)
        for user_id in sorted(p for p in people if p):
            try:
                await self.publish(user_id)
            except SLACK_FAILURES as exc:
                log.warning("could not refresh %s's home tab: %r", user_id, exc)
