"""The recipient clicks "Redeem": the link opens in their browser; Slack still expects an ack."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.slack.ids import REDEEM_ACTION


async def acknowledge_redeem_click(ack: AsyncAck) -> None:
    await ack()


def register(app: AsyncApp) -> None:
    app.action(REDEEM_ACTION)(acknowledge_redeem_click)
