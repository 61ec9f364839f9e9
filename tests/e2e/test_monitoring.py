"""What an admin's monitoring sees: /metrics after a real flow, /readyz going unready and
ready again, Socket Mode's health port, and a refused bot token at start."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import OperationalError

from bot.config import load_settings
from bot.domain import Status
from bot.health import add_health_routes
from bot.metrics import Metrics
from bot.offline.emulator import SlackEmulator
from bot.runtime import Runtime
from bot.server import SLACK_PATH
from bot.slack.gateway import SlackGateway
from bot.slack.ids import APPROVE_ACTION
from bot.slack.web_client import ObservedWebClient
from bot.store import Store
from tests.databases import unreachable
from tests.fakes.giftronaut import GiftronautState
from tests.slack_stack import APPROVERS, ARJUN, JANE, MAYA, TEAM, Stack
from tests.support import (
    free_port,
    giftronaut_stack,
    rewardbot,
    rewardbot_exits,
    serve_args,
    slack_env,
    wait_healthy,
)
from tests.unit.support import stored_request

JANES_CARD = {
    "recipient": JANE,
    "card": "giftronaut:branded:10042",
    "amount": "50",
    "message": "For shipping the release",
}


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _url(stack: Stack, path: str) -> str:
    return stack.emulator.driver.delivery.request_url.replace(SLACK_PATH, path)  # type: ignore[union-attr]


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def _scrape(session: aiohttp.ClientSession, url: str) -> tuple[str, dict]:  # type: ignore[type-arg]
    async with session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    return text, _samples(text)


def _value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    """The value of one sample; a scrape without it fails (a zero is only a zero if shown)."""
    key = (name, frozenset(labels.items()))
    assert key in samples, f"no sample {name}{labels} in the scrape"
    return float(samples[key])


def _never_observed(samples: dict, name: str, **labels: str) -> bool:  # type: ignore[type-arg]
    """Whether a labelled metric has no sample for ``labels`` (Prometheus shows a labelled
    series from its first observation on, never as a zero before)."""
    return (name, frozenset(labels.items())) not in samples


async def test_metrics_move_with_a_reward_from_request_to_delivery(
    emulator: SlackEmulator, database: str, http_session: aiohttp.ClientSession
) -> None:
    async with giftronaut_stack(emulator, database, GiftronautState()) as stack:
        url = _url(stack, "/metrics")
        _, before = await _scrape(http_session, url)
        assert _value(before, "rewardbot_requests", status="fulfilled") == 0
        assert _never_observed(before, "rewardbot_approval_wait_seconds_count", decision="approved")

        emulator.fail_next("chat.update", "cant_update_message")
        emulator.fail_next("chat.postMessage", status=429, retry_after=0)
        await stack.request_reward(JANES_CARD)
        await emulator.wait_for(lambda: stack.ws.dm_messages(ARJUN), 5, "Arjun's card")
        await stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION)
        await emulator.wait_for_dm(JANE, "sent you a reward")
        await stack.wait_status(1, Status.FULFILLED)
        await asyncio.wait_for(stack.runtime.jobs.wait_idle(), 10)

        text, after = await _scrape(http_session, url)
    assert _value(after, "rewardbot_requests", status="fulfilled") == 1
    assert _value(after, "rewardbot_requests", status="pending_approval") == 0
    assert _value(after, "rewardbot_approval_wait_seconds_count", decision="approved") == 1
    assert _value(after, "rewardbot_approval_to_delivery_seconds_count") == 1
    placed = {"provider": "giftronaut", "operation": "place_order", "outcome": "ok"}
    assert _value(after, "rewardbot_provider_calls_total", **placed) >= 1
    assert (
        _value(
            after,
            "rewardbot_provider_call_duration_seconds_count",
            provider="giftronaut",
            operation="place_order",
        )
        >= 1
    )
    assert _never_observed(
        after, "rewardbot_provider_calls_total", **placed | {"operation": "other"}
    )
    assert _value(after, "rewardbot_slack_rate_limited_total", method="chat.postMessage") == 1
    errors = {"method": "chat.update", "error": "cant_update_message"}
    assert _value(after, "rewardbot_slack_api_errors_total", **errors) == 1
    assert _value(after, "rewardbot_job_queue_depth", kind="fulfil") == 0
    assert _never_observed(after, "rewardbot_jobs_given_up_total", kind="notify")
    # Kinds of things only: no person, request or amount.
    for private in (MAYA, JANE, ARJUN, TEAM, "50.00", "For shipping"):
        assert private not in text


async def _readyz(session: aiohttp.ClientSession, url: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    async with session.get(url) as response:
        return response.status, await response.json()


async def test_readyz_is_unready_while_the_database_cannot_be_opened_and_ready_once_back(
    stack: Stack, database: str, http_session: aiohttp.ClientSession
) -> None:
    url = _url(stack, "/readyz")
    status, body = await _readyz(http_session, url)
    assert (status, body["failing"]) == (200, [])
    assert body["checks"] == {"database": "ok", "job_runner": "ok", "slack_auth": "ok"}

    async with unreachable(database):
        status, body = await _readyz(http_session, url)
        assert (status, body["failing"]) == (503, ["database"])
        assert body["checks"]["database"] == "failing"
        assert database not in str(body)
    status, body = await _readyz(http_session, url)
    assert (status, body["failing"]) == (200, [])


async def test_readyz_waits_for_the_job_runner_and_slack_auth(
    emulator: SlackEmulator, database: str, http_session: aiohttp.ClientSession
) -> None:
    settings = load_settings(
        SLACK_BOT_TOKEN=emulator.bot_token,
        SLACK_SIGNING_SECRET=emulator.signing_secret,
        SLACK_API_URL=emulator.api_url,
        REWARDBOT_DATABASE=database,
        REWARDBOT_APPROVERS=",".join(APPROVERS),
        REWARDBOT_PROVIDERS="sandbox",
    )
    runtime = await Runtime.create(settings)
    app = web.Application()
    add_health_routes(app, runtime)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/readyz"
        status, body = await _readyz(http_session, url)
        assert (status, body["failing"]) == (503, ["job_runner", "slack_auth"])

        await runtime.start()
        assert emulator.calls_to("auth.test")
        status, body = await _readyz(http_session, url)
        assert (status, body["failing"]) == (200, [])

        await runtime.jobs.stop()
        status, body = await _readyz(http_session, url)
        assert (status, body["failing"]) == (503, ["job_runner"])
    finally:
        await runtime.aclose()
        await runner.cleanup()


async def test_socket_mode_answers_health_readiness_and_metrics_on_its_health_port(
    emulator: SlackEmulator, database: str, tmp_path: Path, http_session: aiohttp.ClientSession
) -> None:
    port = free_port()
    env = slack_env(emulator, database, APPROVERS) | {
        "REWARDBOT_PROVIDERS": "sandbox",
        "SLACK_APP_TOKEN": emulator.app_token,
        "REWARDBOT_HEALTH_PORT": str(port),
    }
    emulator.use_socket_mode()
    process = await rewardbot("socket", env=env, cwd=tmp_path)
    try:
        await wait_healthy(port, process=process)
        await emulator.wait_for(lambda: emulator.socket.connection_count, 20, "connect")
        url = f"http://127.0.0.1:{port}"

        async def ready() -> bool:
            status, _ = await _readyz(http_session, f"{url}/readyz")
            return status == 200

        await emulator.wait_for(ready, 10, "/readyz to answer 200")
        _, samples = await _scrape(http_session, f"{url}/metrics")
        assert _value(samples, "rewardbot_requests", status="pending_approval") == 0
        assert ("rewardbot_requests", frozenset({("status", "fulfilled")})) in samples
    finally:
        process.terminate()
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, stderr.decode()


@pytest.mark.parametrize("command", ["serve", "socket"])
async def test_a_bot_token_slack_refuses_stops_start_up_with_one_line(
    emulator: SlackEmulator, database: str, tmp_path: Path, command: str
) -> None:
    env = slack_env(emulator, database, APPROVERS) | {
        "REWARDBOT_PROVIDERS": "sandbox",
        "SLACK_APP_TOKEN": emulator.app_token,
        "SLACK_BOT_TOKEN": "xoxb-not-the-token",
    }
    args = serve_args(free_port()) if command == "serve" else [command]
    returncode, stderr = await rewardbot_exits(*args, env=env, cwd=tmp_path)
    assert returncode == 2, stderr
    assert "Slack refused SLACK_BOT_TOKEN (invalid_auth)" in stderr
    assert "Traceback" not in stderr
    assert "xoxb-not-the-token" not in stderr
    assert emulator.calls_to("auth.test")


class _EventsUnreadable:
    """A store whose audit trail cannot be read (a locked or failing database)."""

    async def events(self, request_id: int) -> list[object]:
        raise OperationalError("SELECT events", None, TimeoutError("database is locked"))


async def test_a_delivery_time_that_cannot_be_read_does_not_fail_a_sent_delivery(
    emulator: SlackEmulator,
) -> None:
    """The DM is sent once and the delivery succeeds: failing it would retry a step whose
    DM went out (Slack takes no idempotency key for a message)."""
    metrics = Metrics()
    client = ObservedWebClient(metrics, token=emulator.bot_token, base_url=emulator.api_url)
    gateway = SlackGateway(client, cast(Store, _EventsUnreadable()), metrics)
    await gateway.deliver(stored_request(recipient_id=JANE, status=Status.ORDERING), None)
    assert len(emulator.workspace.dm_messages(JANE)) == 1


async def _serve_process(env: dict[str, str], cwd: Path, port: int) -> asyncio.subprocess.Process:
    process = await rewardbot(*serve_args(port), env=env, cwd=cwd)
    await wait_healthy(port, process=process)
    return process


async def _stopped(process: asyncio.subprocess.Process) -> str:
    """SIGTERM ``process``; its standard error, once it exited 0."""
    process.terminate()
    _, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, stderr.decode()
    return stderr.decode()


@pytest.mark.parametrize("then", ["accepted", "refused"])
async def test_slack_unavailable_at_start_leaves_the_bot_running_unready_until_it_answers(
    emulator: SlackEmulator,
    database: str,
    tmp_path: Path,
    http_session: aiohttp.ClientSession,
    then: str,
) -> None:
    """A 503 at start is not a refused token: the bot starts, unready, and asks again (with
    backoff) until Slack accepts the token (ready) or refuses it (unready, an error logged)."""
    # Unavailable at start and twice more (at 1 s and 3 s), so /readyz is seen unready; then
    # Slack accepts the token (7 s) or refuses it.
    unavailable = 3 if then == "accepted" else 2
    for _ in range(unavailable):
        emulator.fail_next("auth.test", "service_unavailable", status=503)
    if then == "refused":
        emulator.fail_next("auth.test", "token_revoked")
    calls = unavailable + 1
    port = free_port()
    env = slack_env(emulator, database, APPROVERS) | {"REWARDBOT_PROVIDERS": "sandbox"}
    process = await _serve_process(env, tmp_path, port)
    url = f"http://127.0.0.1:{port}/readyz"
    try:
        status, body = await _readyz(http_session, url)
        assert (status, body["failing"]) == (503, ["slack_auth"])

        async def ready() -> bool:
            return (await _readyz(http_session, url))[0] == 200

        if then == "accepted":
            await emulator.wait_for(ready, 20, "/readyz to answer 200 once Slack answers")
        else:
            await emulator.wait_for(lambda: len(emulator.calls_to("auth.test")) == calls, 20)
            await asyncio.sleep(0.5)
            status, body = await _readyz(http_session, url)
            assert (status, body["failing"]) == (503, ["slack_auth"])
    finally:
        stderr = await _stopped(process)
    assert len(emulator.calls_to("auth.test")) == calls
    [warning] = [line for line in stderr.splitlines() if "WARNING" in line]
    assert "SLACK_BOT_TOKEN" in warning and "service_unavailable" in warning, warning
    refusals = [line for line in stderr.splitlines() if "ERROR" in line]
    if then == "refused":
        [refusal] = refusals
        assert "Slack refused SLACK_BOT_TOKEN (token_revoked)" in refusal, refusal
    else:
        assert refusals == []
    assert "Traceback" not in stderr


async def test_slack_unreachable_at_start_leaves_the_bot_running_unready(
    emulator: SlackEmulator, database: str, tmp_path: Path, http_session: aiohttp.ClientSession
) -> None:
    env = slack_env(emulator, database, APPROVERS) | {
        "REWARDBOT_PROVIDERS": "sandbox",
        "SLACK_API_URL": f"http://127.0.0.1:{free_port()}/api/",
    }
    port = free_port()
    process = await _serve_process(env, tmp_path, port)
    try:
        status, body = await _readyz(http_session, f"http://127.0.0.1:{port}/readyz")
        assert (status, body["failing"]) == (503, ["slack_auth"])
    finally:
        stderr = await _stopped(process)
    assert "SLACK_API_URL" in stderr and "Traceback" not in stderr
