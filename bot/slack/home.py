"""The App Home tab: what waits for the user's decision, their own requests, their budgets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.domain import RewardRequest
from bot.slack.blocks import SANDBOX_NOTICE, Block, mrkdwn_context, mrkdwn_section, plain
from bot.slack.cards import approval_card
from bot.slack.lines import next_step, request_line


def home_view(
    waiting: Sequence[Sequence[RewardRequest]],
    waiting_total: int,
    own: Sequence[RewardRequest],
    budgets: Sequence[str],
    month: str,
    sandbox: bool = False,
) -> dict[str, Any]:
    """The App Home tab. Its buttons are the approval cards' own, and work the same way.
    ``sandbox``: the sandbox provider is enabled, and the tab says what that means."""
    blocks: list[Block] = [{"type": "header", "text": plain("Rewards")}]
    if sandbox:
        blocks.append(mrkdwn_section(SANDBOX_NOTICE))
    if waiting:
        shown = (
            f"{waiting_total}, oldest {len(waiting)} shown"
            if waiting_total > len(waiting)
            else waiting_total
        )
        blocks.append(mrkdwn_section(f"*Waiting for your decision* ({shown})"))
        for batch in waiting:
            _, card = approval_card(batch[0], batch)
            blocks += card
            blocks.append({"type": "divider"})
    blocks.append(mrkdwn_section("*Your recent requests*"))
    if own:
        blocks += [mrkdwn_section(f"{request_line(r)}\n_{next_step(r)}_") for r in own]
    else:
        blocks.append(mrkdwn_section("None yet. Type `/reward` in any channel to send one."))
    if budgets:
        blocks.append(mrkdwn_section(f"*Your teams' budgets, {month}*"))
        blocks += [mrkdwn_section(line) for line in budgets]
    blocks.append(mrkdwn_context("`/reward help` shows every command."))
    return {"type": "home", "blocks": blocks}
