"""The reward use cases, built together: what the handlers reach as ``runtime.rewards``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.catalog import Catalog
from bot.metrics import Metrics
from bot.policy.rules import Policy
from bot.rewards.cancellation import Cancellation
from bot.rewards.decisions import Decisions
from bot.rewards.intake import RewardIntake
from bot.rewards.replies import Replies
from bot.rewards.review import Review
from bot.slack.gateway import SlackGateway
from bot.store import Store
from providers.base import Provider


@dataclass(frozen=True)
class Rewards:
    """One part per use case; they share nothing but the store, policy and Slack gateway."""

    intake: RewardIntake
    decisions: Decisions
    review: Review
    cancellation: Cancellation
    replies: Replies

    @classmethod
    def create(
        cls,
        store: Store,
        catalog: Catalog,
        gateway: SlackGateway,
        policy: Policy,
        providers: Mapping[str, Provider],
        metrics: Metrics,
    ) -> Rewards:
        replies = Replies(gateway)
        return cls(
            intake=RewardIntake(store, catalog, gateway, policy, replies),
            decisions=Decisions(store, policy, providers, metrics),
            review=Review(store, policy),
            cancellation=Cancellation(store, providers),
            replies=replies,
        )
