"""Building the Bolt app: Bolt's warning about an unused token stays away, without taking
SLACK_BOT_TOKEN out of the process's environment for good."""

from __future__ import annotations

import os

import pytest

from bot.app import build_app
from bot.config import load_settings
from bot.runtime import Runtime

BOLT_WARNING = "will be unused"


async def test_the_token_is_hidden_from_bolt_only_while_the_app_is_built(
    database: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-the-environment")
    settings = load_settings(
        SLACK_BOT_TOKEN="xoxb-from-the-environment",
        SLACK_SIGNING_SECRET="test-app-signing-secret-8c1f2e",
        REWARDBOT_DATABASE=database,
        REWARDBOT_APPROVERS="U012ABCDEF",
        REWARDBOT_PROVIDERS="sandbox",
    )
    runtime = await Runtime.create(settings)
    try:
        caplog.set_level("DEBUG")
        for socket_mode in (False, True):
            build_app(runtime, socket_mode=socket_mode)
    finally:
        await runtime.aclose()
    assert os.environ["SLACK_BOT_TOKEN"] == "xoxb-from-the-environment"
    assert not [r for r in caplog.records if BOLT_WARNING in r.getMessage()]
