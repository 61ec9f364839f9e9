"""Answering one person privately, where they clicked or typed."""

from __future__ import annotations

import logging

from bot.slack.gateway import SLACK_FAILURES, SlackGateway

log = logging.getLogger(__name__)


class Replies:
    def __init__(self, gateway: SlackGateway) -> None:
        self._gateway = gateway

    async def tell(self, channel: str, user_id: str, text: str) -> None:
        """Answer one user privately: ephemeral where they are, else by DM."""
        try:
            await self._gateway.ephemeral(channel, user_id, text)
            return
        except SLACK_FAILURES as exc:
            log.info("ephemeral to %s in %s failed (%r); sending a DM", user_id, channel, exc)
        try:
            await self._gateway.answer_in_dm(user_id, text)
        except SLACK_FAILURES as exc:
            log.warning("could not tell %s: %r", user_id, exc)
