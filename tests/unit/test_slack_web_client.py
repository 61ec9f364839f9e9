"""The Slack Web API client the bot uses: a call Slack (or a proxy in front of it) answers with
something that is not Slack's JSON still fails as a Slack failure the callers catch, and is
counted with a label that is a kind of thing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from prometheus_client import generate_latest

from bot.metrics import Metrics
from bot.slack.gateway import SLACK_FAILURES
from bot.slack.web_client import ObservedWebClient

ANSWERS = {
    "text/plain 503": web.Response(
        status=503, text="upstream connect error", content_type="text/plain"
    ),
    "broken JSON 502": web.Response(
        status=502, text='{"ok": false, "err', content_type="application/json"
    ),
    "HTML 500": web.Response(status=500, text="<html>oops</html>", content_type="text/html"),
}


@pytest.fixture
async def api_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    answer: web.Response = ANSWERS[request.param]

    async def any_method(_: web.Request) -> web.Response:
        return web.Response(
            status=answer.status, body=answer.body, content_type=answer.content_type
        )

    app = web.Application()
    app.router.add_post("/api/{method}", any_method)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/api/"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("api_url", list(ANSWERS), indirect=True)
async def test_an_answer_that_is_not_slacks_json_fails_as_a_slack_failure_and_is_counted(
    api_url: str,
) -> None:
    metrics = Metrics()
    client = ObservedWebClient(metrics, token="xoxb-test", base_url=api_url, retry_handlers=[])
    with pytest.raises(SLACK_FAILURES):
        await client.chat_postMessage(channel="C1", text="hello")
    text = generate_latest(metrics.registry).decode()
    assert 'rewardbot_slack_api_errors_total{error="other",method="chat.postMessage"} 1.0' in text
