"""views.* methods: trigger rules, validation, stacks, hashes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.offline.emulator import SlackEmulator


def modal(title: str = "Reward", **extra: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": "reward",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Send"},
        "blocks": [
            {
                "type": "input",
                "block_id": "amount",
                "label": {"type": "plain_text", "text": "Amount"},
                "element": {"type": "plain_text_input", "action_id": "value"},
            }
        ],
    }
    view.update(extra)
    return view


async def error_of(coro: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await coro
    return info.value


async def test_open_consumes_trigger_once(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    trigger = emulator.triggers.issue("U_ALICE")
    view = (await client.views_open(trigger_id=trigger, view=modal()))["view"]
    assert view["id"].startswith("V") and view["root_view_id"] == view["id"]
    assert view["state"] == {"values": {}} and view["hash"] and view["callback_id"] == "reward"
    assert emulator.workspace.current_view("U_ALICE") == view
    again = await error_of(client.views_open(trigger_id=trigger, view=modal()))
    assert again.response["error"] == "exchanged_trigger_id"
    unknown = await error_of(client.views_open(trigger_id="1.2.abc", view=modal()))
    assert unknown.response["error"] == "invalid_trigger_id"


async def test_expired_trigger(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    emulator.triggers.ttl_seconds = 0.05
    trigger = emulator.triggers.issue("U_ALICE")
    await asyncio.sleep(0.1)
    err = await error_of(client.views_open(trigger_id=trigger, view=modal()))
    assert err.response["error"] == "expired_trigger_id"


@pytest.mark.parametrize(
    "view",
    [
        modal(title="x" * 25),  # title limit is 24
        modal(submit=None),  # inputs need a submit button
        modal(blocks=[{"type": "bogus"}]),
        {"type": "modal", "blocks": []},
    ],
)
async def test_invalid_views(
    emulator: SlackEmulator, client: AsyncWebClient, view: dict[str, Any]
) -> None:
    trigger = emulator.triggers.issue("U_ALICE")
    err = await error_of(client.views_open(trigger_id=trigger, view=view))
    assert err.response["error"] == "invalid_arguments"
    assert err.response["response_metadata"]["messages"]
    # the rejected call did not burn the trigger
    assert (await client.views_open(trigger_id=trigger, view=modal()))["ok"]


async def test_update_and_push(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    root = (
        await client.views_open(
            trigger_id=emulator.triggers.issue("U_ALICE"), view=modal(external_id="ext-1")
        )
    )["view"]
    stale = await error_of(
        client.views_update(view_id=root["id"], hash="0.0", view=modal(title="New"))
    )
    assert stale.response["error"] == "hash_conflict"
    updated = (
        await client.views_update(external_id="ext-1", hash=root["hash"], view=modal(title="New"))
    )["view"]
    assert updated["id"] == root["id"] and updated["hash"] != root["hash"]
    missing = await error_of(client.views_update(view_id="VNOPE", view=modal()))
    assert missing.response["error"] == "not_found"
    for _ in range(2):
        pushed = await client.views_push(
            trigger_id=emulator.triggers.issue("U_ALICE"), view=modal()
        )
        assert pushed["view"]["root_view_id"] == root["id"]
    full = await error_of(
        client.views_push(trigger_id=emulator.triggers.issue("U_ALICE"), view=modal())
    )
    assert full.response["error"] == "push_limit_reached"
    assert len(emulator.workspace.views["U_ALICE"]) == 3


async def test_a_prefill_longer_than_the_input_allows_is_refused(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    trigger = emulator.triggers.issue("U_ALICE")
    view = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Too long"},
        "blocks": [
            {
                "type": "input",
                "block_id": "amount",
                "label": {"type": "plain_text", "text": "Amount"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "max_length": 5,
                    "initial_value": "123456",
                },
            }
        ],
    }
    with pytest.raises(SlackApiError) as refused:
        await client.views_open(trigger_id=trigger, view=view)
    assert refused.value.response["error"] in ("invalid_arguments", "invalid_blocks")
