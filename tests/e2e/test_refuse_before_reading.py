"""Refuse before reading: what is not provably Slack's is answered 401 or 413 from its headers
(at most one HMAC over a capped body), with one short log line, never parsed, never a 500."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.offline.emulator.signing import signed_headers
from bot.slack.signature import MAX_BODY_BYTES
from tests.slack_stack import Stack

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _url(stack: Stack) -> str:
    return str(stack.emulator.driver.delivery.request_url)  # type: ignore[union-attr]


def _refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bot.slack.signature"]


def _assert_quiet(caplog: pytest.LogCaptureFixture, refusals: int) -> None:
    """Exactly one short warning per refused request; no error, no traceback anywhere."""
    assert len(_refusals(caplog)) == refusals
    assert all(r.levelno == logging.WARNING for r in _refusals(caplog))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"X-Slack-Request-Timestamp": "yesterday", "X-Slack-Signature": "v0=00"}, "a=1", 401),
        ({"X-Slack-Request-Timestamp": "12.5", "X-Slack-Signature": "v0=00"}, "a=1", 401),
        ({"X-Slack-Request-Timestamp": "9" * 40, "X-Slack-Signature": "v0=00"}, "a=1", 401),
        ({"X-Slack-Signature": "v0=00"}, "a=1", 401),
        ({}, "payload=" + "[" * 100_000 + "]" * 100_000, 401),
        ({}, json.dumps({"a": 1}), 401),
    ],
    ids=["words", "decimal", "huge", "no timestamp", "deep nesting", "json"],
)
async def test_malformed_or_unsigned_requests_are_refused_with_one_line(
    stack: Stack,
    http_session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    headers: dict[str, str],
    body: str,
    status: int,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with http_session.post(_url(stack), data=body, headers=FORM | headers) as response:
        assert response.status == status
    _assert_quiet(caplog, 1)
    assert not stack.emulator.calls_to("views.open")


async def test_a_body_too_large_to_be_slacks_is_refused_unread(
    stack: Stack, http_session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """Content-Length says 10 MiB, with a fresh timestamp and a signature-shaped header: the
    answer comes before the body is sent (a server that read it would wait for ever)."""
    caplog.set_level(logging.DEBUG)
    headers = FORM | {
        "X-Slack-Request-Timestamp": str(int(time.time())),
        "X-Slack-Signature": "v0=" + "0" * 64,
        "Content-Length": str(10 * MAX_BODY_BYTES),
    }
    never_sent = asyncio.Event()

    async def a_trickle() -> AsyncIterator[bytes]:
        yield b"a=1"
        await never_sent.wait()

    post = http_session.post(_url(stack), data=a_trickle(), headers=headers)
    async with asyncio.timeout(5), post as response:
        assert response.status == 413
    _assert_quiet(caplog, 1)


async def test_an_endless_chunked_body_is_cut_off_at_the_cap(
    stack: Stack, http_session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = FORM | {
        "X-Slack-Request-Timestamp": str(int(time.time())),
        "X-Slack-Signature": "v0=" + "0" * 64,
    }

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"x" * 65_536

    status = None
    try:
        async with asyncio.timeout(5):
            async with http_session.post(_url(stack), data=endless(), headers=headers) as resp:
                status = resp.status
    except aiohttp.ClientError:
        pass  # the server answered and closed while the client was still uploading
    assert status in (413, None)
    await stack.emulator.wait_for(lambda: _refusals(caplog), 5, "the refusal line")
    _assert_quiet(caplog, 1)


async def test_a_signed_request_is_still_served(
    stack: Stack, http_session: aiohttp.ClientSession
) -> None:
    trigger = stack.emulator.triggers.issue("U0MAYA")
    body = (
        "command=%2Freward&text=help&user_id=U0MAYA&channel_id=C0TEAMWINS"
        f"&trigger_id={trigger}&team_id=T0EMULATOR"
    )
    headers = FORM | signed_headers(stack.emulator.signing_secret, body, int(time.time()))
    async with http_session.post(_url(stack), data=body.encode(), headers=headers) as response:
        assert response.status == 200
