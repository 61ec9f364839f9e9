"""The Web API as slack_sdk's AsyncWebClient sees it: shapes, errors, failures."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.offline.emulator import SlackEmulator, Workspace

SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}


async def error_of(coro: object) -> str:
    with pytest.raises(SlackApiError) as info:
        await coro  # type: ignore[misc]
    return str(info.value.response["error"])


async def test_auth(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    resp = await client.auth_test()
    assert resp["user_id"] == "UBOT" and resp["bot_id"] == "BBOT"
    assert {"url", "team", "user", "team_id"} <= resp.data.keys()  # type: ignore[union-attr]
    anonymous = AsyncWebClient(base_url=emulator.api_url)
    assert await error_of(anonymous.auth_test()) == "not_authed"
    forged = AsyncWebClient(token="xoxb-forged", base_url=emulator.api_url)
    assert await error_of(forged.auth_test()) == "invalid_auth"


async def test_post_message_targets(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    first = await client.chat_postMessage(channel="C_GENERAL", text="hello", blocks=[SECTION])
    assert first["channel"] == "C_GENERAL" and first["message"]["text"] == "hello"
    assert first["message"]["blocks"][0]["block_id"]  # Slack fills block_id in
    to_user = await client.chat_postMessage(channel="U_BOB", text="psst")
    dm = await client.conversations_open(users="U_BOB")
    assert to_user["channel"] == dm["channel"]["id"]
    assert to_user["channel"].startswith("D")
    again = await client.chat_postMessage(channel=dm["channel"]["id"], text="again")
    assert [m.text for m in emulator.workspace.dm_messages("U_BOB")] == ["psst", "again"]
    assert float(first["ts"]) < float(to_user["ts"]) < float(again["ts"])
    reply = await client.chat_postMessage(channel="C_GENERAL", text="r", thread_ts=first["ts"])
    assert [m.ts for m in emulator.workspace.thread_replies("C_GENERAL", first["ts"])] == [
        reply["ts"]
    ]


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"channel": "C_RANDOM", "text": "x"}, "not_in_channel"),
        ({"channel": "C_SECRET", "text": "x"}, "channel_not_found"),
        ({"channel": "C_NOPE", "text": "x"}, "channel_not_found"),
        ({"channel": "C_GENERAL"}, "no_text"),
        ({"channel": "C_GENERAL", "blocks": [{"type": "bogus"}]}, "invalid_blocks"),
        (
            {"channel": "C_GENERAL", "blocks": [{"type": "section", "text": {"type": "mrkdwn"}}]},
            "invalid_blocks",
        ),
        (
            {
                "channel": "C_GENERAL",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
            },
            "invalid_blocks",
        ),
        (
            {"channel": "C_GENERAL", "blocks": [{"type": "actions", "elements": [{"type": "?"}]}]},
            "invalid_blocks",
        ),
    ],
)
async def test_post_message_refusals(
    client: AsyncWebClient, kwargs: dict[str, Any], error: str
) -> None:
    assert await error_of(client.chat_postMessage(**kwargs)) == error


async def test_form_encoded_blocks_and_token_field(emulator: SlackEmulator) -> None:
    form = {"token": emulator.bot_token, "channel": "C_GENERAL", "blocks": json.dumps([SECTION])}
    async with (
        aiohttp.ClientSession() as http,
        http.post(emulator.api_url + "chat.postMessage", data=form) as resp,
    ):
        body = await resp.json()
    assert resp.status == 200 and body["ok"], body
    assert emulator.workspace.messages("C_GENERAL")[-1].blocks[0]["text"]["text"] == "*hi*"
    assert "token" not in emulator.calls[-1].args


async def test_update(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C_GENERAL", text="v1", blocks=[SECTION])
    updated = await client.chat_update(channel="C_GENERAL", ts=posted["ts"], text="v2")
    assert updated["ts"] == posted["ts"] and updated["text"] == "v2"
    msg = emulator.workspace.messages("C_GENERAL")[0]
    assert msg.text == "v2" and msg.edited and msg.blocks  # omitted blocks are kept
    assert (
        await error_of(client.chat_update(channel="C_GENERAL", ts="1.000001", text="x"))
        == "message_not_found"
    )
    human = emulator.workspace.post(
        emulator.workspace.channels["C_GENERAL"], "U_ALICE", "mine", [], None
    )
    assert (
        await error_of(client.chat_update(channel="C_GENERAL", ts=human.ts, text="x"))
        == "cant_update_message"
    )


async def test_ephemeral(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    resp = await client.chat_postEphemeral(channel="C_GENERAL", user="U_ALICE", text="only you")
    assert resp["message_ts"]
    assert [e.text for e in emulator.workspace.ephemerals("U_ALICE")] == ["only you"]
    assert emulator.workspace.ephemerals("U_BOB") == []
    assert emulator.workspace.messages("C_GENERAL") == []
    assert (
        await error_of(client.chat_postEphemeral(channel="C_GENERAL", user="U_CAROL", text="x"))
        == "user_not_in_channel"
    )


async def test_users_info(client: AsyncWebClient) -> None:
    user = (await client.users_info(user="U_ALICE"))["user"]
    assert user["real_name"] == "Alice Doe" and user["profile"]["email"] == "alice@example.com"
    assert user["tz"] == "Europe/Paris" and user["tz_offset"] == 3600 and not user["is_bot"]
    assert await error_of(client.users_info(user="U_NOBODY")) == "user_not_found"


async def test_usergroups_users_list(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    ws = emulator.workspace
    ws.add_usergroup("S0ENG", "eng", ["U_ALICE", "U_BOB"])
    ws.add_usergroup("S0EMPTY", "nobody", [])
    resp = await client.usergroups_users_list(usergroup="S0ENG")
    assert resp.data == {"ok": True, "users": ["U_ALICE", "U_BOB"]}
    ws.set_usergroup_members("S0ENG", ["U_CAROL"])
    again = await client.usergroups_users_list(
        usergroup="S0ENG", include_disabled=True, team_id=ws.team_id
    )
    assert again["users"] == ["U_CAROL"]
    assert (await client.usergroups_users_list(usergroup="S0EMPTY"))["users"] == []
    assert await error_of(client.usergroups_users_list(usergroup="S0NOPE")) == "no_such_subteam"
    with pytest.raises(SlackApiError) as info:
        await client.api_call("usergroups.users.list", http_verb="GET", params={})
    assert info.value.response["error"] == "invalid_arguments"
    assert info.value.response["response_metadata"]["messages"] == [
        "missing required field: usergroup"
    ]


def test_usergroup_builder_refusals() -> None:
    ws = Workspace()
    ws.add_user("U_ALICE", name="alice")
    ws.add_user("U_BOB", name="bob")
    ws.add_usergroup("S0ENG", "eng", ["U_ALICE", "U_ALICE"])
    with pytest.raises(ValueError, match="U_NOBODY"):
        ws.add_usergroup("S0OPS", "ops", ["U_NOBODY"])
    with pytest.raises(ValueError, match="@eng"):
        ws.add_usergroup("S0ENG2", "eng", [])
    with pytest.raises(ValueError, match="S0NOPE"):
        ws.set_usergroup_members("S0NOPE", ["U_ALICE"])
    with pytest.raises(ValueError, match="U_NOBODY"):
        ws.set_usergroup_members("S0ENG", ["U_BOB", "U_NOBODY"])
    assert ws.usergroups["S0ENG"].members == ["U_ALICE"]


async def test_permalink(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C_GENERAL", text="link me")
    link = await client.chat_getPermalink(channel="C_GENERAL", message_ts=posted["ts"])
    p_ts = "p" + posted["ts"].replace(".", "")
    assert link.data == {
        "ok": True,
        "channel": "C_GENERAL",
        "permalink": f"https://emulator.slack.com/archives/C_GENERAL/{p_ts}",
    }
    reply = await client.chat_postMessage(channel="C_GENERAL", text="r", thread_ts=posted["ts"])
    reply_link = await client.chat_getPermalink(channel="C_GENERAL", message_ts=reply["ts"])
    assert reply_link["permalink"] == (
        "https://emulator.slack.com/archives/C_GENERAL/p"
        + reply["ts"].replace(".", "")
        + f"?thread_ts={posted['ts']}&cid=C_GENERAL"
    )
    dm = await client.chat_postMessage(channel="U_BOB", text="psst")
    dm_link = await client.chat_getPermalink(channel=dm["channel"], message_ts=dm["ts"])
    assert dm_link["channel"] == dm["channel"]
    alice = emulator.workspace.post(
        emulator.workspace.channels["C_RANDOM"], "U_ALICE", "public", [], None
    )
    public = await client.chat_getPermalink(channel="C_RANDOM", message_ts=alice.ts)
    assert public["permalink"].endswith("/archives/C_RANDOM/p" + alice.ts.replace(".", ""))


@pytest.mark.parametrize(
    ("channel", "message_ts", "error"),
    [
        ("C_NOPE", "1.000001", "channel_not_found"),
        ("C_SECRET", "1.000001", "channel_not_found"),  # private, bot not a member
        ("general", "1.000001", "channel_not_found"),  # a name is not a channel ID
        ("U_BOB", "1.000001", "channel_not_found"),  # nor is a user ID
        ("C_GENERAL", "1.000001", "message_not_found"),
        ("C_RANDOM", "POSTED", "message_not_found"),  # right ts, wrong channel
        ("C_GENERAL", "", "message_not_found"),
        ("", "POSTED", "channel_not_found"),
    ],
)
async def test_permalink_refusals(
    emulator: SlackEmulator, client: AsyncWebClient, channel: str, message_ts: str, error: str
) -> None:
    posted = await client.chat_postMessage(channel="C_GENERAL", text="link me")
    ts = posted["ts"] if message_ts == "POSTED" else message_ts
    args = {"channel": channel, "message_ts": ts}
    assert (
        await error_of(client.api_call("chat.getPermalink", http_verb="GET", params=args)) == error
    )
    assert "D_BOB" not in emulator.workspace.channels  # refusals open no DM


async def test_unknown_method_and_token_types(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    assert await error_of(client.api_call("chat.fly")) == "unknown_method"
    assert (
        await error_of(client.apps_connections_open(app_token=emulator.bot_token))
        == "not_allowed_token_type"
    )
    url = (await client.apps_connections_open(app_token=emulator.app_token))["url"]
    assert url.startswith(f"ws://127.0.0.1:{emulator.port}/socket-mode/")


async def test_injected_failures_and_call_log(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    emulator.fail_next("chat.postMessage", error="ratelimited", status=429, retry_after=7)
    emulator.fail_next("chat.postMessage", error="fatal_error")
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel="C_GENERAL", text="1")
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "7"
    assert await error_of(client.chat_postMessage(channel="C_GENERAL", text="2")) == "fatal_error"
    await client.chat_postMessage(channel="C_GENERAL", text="3")
    calls = emulator.calls_to("chat.postMessage")
    assert [(c.args["text"], c.ok) for c in calls] == [("1", False), ("2", False), ("3", True)]


async def test_history_refuses_a_bad_cursor_or_time(client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel="C_GENERAL", text="one")
    page = await client.conversations_history(channel="C_GENERAL", limit=1)
    assert [m["text"] for m in page["messages"]] == ["one"]
    bad_cursor = client.conversations_history(channel="C_GENERAL", cursor="dXNlcjpVMEc5V0ZYTlo=")
    assert await error_of(bad_cursor) == "invalid_cursor"
    bad_time = client.conversations_history(channel="C_GENERAL", oldest="yesterday")
    assert await error_of(bad_time) == "invalid_arguments"
