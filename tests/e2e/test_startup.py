"""Starting the real ``rewardbot`` process as an admin would: every start-up failure is one
line naming the setting or file, exit 2; ``--version`` and help that read well in a terminal;
no spurious warning on start; and the JSON log of a whole flow at DEBUG parses line by line,
says which request and reward each line is about, and holds no secret."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url

from bot.offline.emulator import SlackEmulator
from bot.server import SLACK_PATH
from bot.slack.ids import APPROVE_ACTION
from tests.fakes import serve
from tests.fakes.cardpluspay import API_KEY as CARDPLUSPAY_API_KEY
from tests.fakes.cardpluspay import app as cardpluspay_app
from tests.fakes.cardpluspay import standard_state
from tests.slack_stack import APPROVERS, ARJUN, GOOD_VALUES, JANE, MAYA, TEAM, redeem_urls
from tests.support import (
    free_port,
    rewardbot,
    rewardbot_exits,
    serve_args,
    slack_env,
    wait_healthy,
)

BOLT_WARNING = "will be unused"
# Every optional setting of a running bot: its help names each.
OPTIONAL_SETTINGS = (
    "REWARDBOT_DATABASE",
    "REWARDBOT_LOG_LEVEL",
    "REWARDBOT_LOG_FORMAT",
    "REWARDBOT_HEALTH_PORT",
    "REWARDBOT_JOB_RETENTION_DAYS",
    "REWARDBOT_JOB_LEASE_SECONDS",
    "REWARDBOT_SLACK_TIMEOUT_SECONDS",
    "SLACK_API_URL",
)


def _env(emulator: SlackEmulator, database: str, **changes: str) -> dict[str, str]:
    return (
        slack_env(emulator, database, APPROVERS)
        | {"REWARDBOT_PROVIDERS": "sandbox", "SLACK_APP_TOKEN": emulator.app_token}
        | changes
    )


def _rewardbot(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _not_a_database(tmp_path: Path) -> str:
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a SQLite database\n" * 20)
    return str(path)


def _a_directory(tmp_path: Path) -> str:
    (tmp_path / "a-directory").mkdir()
    return str(tmp_path / "a-directory")


FAILURES = {
    "database is a directory": ({"REWARDBOT_DATABASE": _a_directory}, "REWARDBOT_DATABASE"),
    "database directory missing": (
        {"REWARDBOT_DATABASE": lambda tmp: str(tmp / "no-such-dir" / "r.db")},
        "REWARDBOT_DATABASE",
    ),
    "database is not SQLite": ({"REWARDBOT_DATABASE": _not_a_database}, "REWARDBOT_DATABASE"),
    "policy file unreadable": (
        {"REWARDBOT_APPROVERS": lambda tmp: "", "REWARDBOT_POLICY": _a_directory},
        "policy file",
    ),
    "policy file missing": (
        {"REWARDBOT_APPROVERS": lambda tmp: "", "REWARDBOT_POLICY": lambda tmp: "gone.toml"},
        "policy file gone.toml",
    ),
    "bad log level": ({"REWARDBOT_LOG_LEVEL": lambda tmp: "LOUD"}, "REWARDBOT_LOG_LEVEL"),
    "bad log format": ({"REWARDBOT_LOG_FORMAT": lambda tmp: "xml"}, "REWARDBOT_LOG_FORMAT"),
}


@pytest.mark.parametrize("command", ["serve", "socket"])
@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_start_up_failure_is_one_line_naming_it_and_exit_2(
    emulator: SlackEmulator, tmp_path: Path, command: str, failure: str
) -> None:
    makers, named = FAILURES[failure]
    changes = {name: make(tmp_path) for name, make in makers.items()}
    # SQLite only: its database failures are of files; the others stop before any database.
    env = _env(emulator, str(tmp_path / "rewardbot.db"), **changes)
    result = _rewardbot(command, env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("rewardbot: ") and named in line, line
    assert "Traceback" not in line
    if "REWARDBOT_DATABASE" in changes:
        assert changes["REWARDBOT_DATABASE"] in line


# A PostgreSQL database the bot cannot open: its server does not answer, or it does not exist.
POSTGRESQL_FAILURES = {
    "server unreachable": lambda url: url.set(port=free_port()),
    "database missing": lambda url: url.set(database=f"{url.database}_missing"),
}


@pytest.mark.postgresql_only("how a PostgreSQL database that cannot be opened is reported")
@pytest.mark.parametrize("command", ["serve", "socket"])
@pytest.mark.parametrize("failure", list(POSTGRESQL_FAILURES))
def test_a_postgresql_database_that_cannot_be_opened_is_one_line_naming_it_and_exit_2(
    emulator: SlackEmulator, database: str, tmp_path: Path, command: str, failure: str
) -> None:
    url = POSTGRESQL_FAILURES[failure](make_url(database).set(password="pw-never-shown"))
    broken = url.render_as_string(hide_password=False)
    result = _rewardbot(command, env=_env(emulator, broken), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("rewardbot: ") and "REWARDBOT_DATABASE" in line, line
    assert "Traceback" not in line and "pw-never-shown" not in line, line


# Which port is already taken: the health port (both commands), or serve's own --port.
BUSY_PORTS = {
    ("serve", "health"): "REWARDBOT_HEALTH_PORT",
    ("socket", "health"): "REWARDBOT_HEALTH_PORT",
    ("serve", "main"): "--port",
}


@pytest.mark.parametrize(("command", "which"), list(BUSY_PORTS))
async def test_a_port_already_in_use_is_one_line_naming_it_and_exit_2(
    emulator: SlackEmulator, database: str, tmp_path: Path, command: str, which: str
) -> None:
    # The health port listens on every interface, serve's port on the --host given.
    with socket.create_server(("0.0.0.0" if which == "health" else "127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        # At WARNING, so the failure is all a correct start-up writes to standard error.
        env = _env(emulator, database, REWARDBOT_LOG_LEVEL="WARNING")
        if which == "health":
            env["REWARDBOT_HEALTH_PORT"] = port
        main_port = port if which == "main" else str(free_port())
        args = ["--host", "127.0.0.1", "--port", main_port] if command == "serve" else []
        returncode, stderr = await rewardbot_exits(command, *args, env=env, cwd=tmp_path)
    assert returncode == 2, stderr
    [line] = stderr.splitlines()
    setting = BUSY_PORTS[command, which]
    assert line.startswith("rewardbot: Cannot listen on ") and setting in line, line
    assert port in line and "address in use" in line, line


def test_version_and_help_read_well_in_a_terminal(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REWARDBOT_"))}
    shown = _rewardbot("--version", env=env, cwd=tmp_path)
    assert shown.returncode == 0
    assert shown.stdout.strip() == f"rewardbot {version('rewardbot')}"
    top = _rewardbot("--help", env=env, cwd=tmp_path).stdout
    assert "``" not in top and ":class:" not in top
    for command in ("serve", "socket", "migrate", "copy-db", "demo", "export"):
        assert command in top
    needs = {
        "serve": ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "REWARDBOT_PROVIDERS"),
        "socket": ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "REWARDBOT_PROVIDERS"),
        "demo": ("no settings",),
        "export": ("REWARDBOT_DATABASE",),
        "copy-db": ("--from", "--to", "reads no settings"),
    }
    for command, settings in needs.items():
        text = _rewardbot(command, "--help", env=env, cwd=tmp_path).stdout
        description = text.split("\n\n")[1]  # after the usage line: what it does
        assert len(description.split()) > 5, text
        for setting in settings:
            assert setting in text, (command, setting)
        if command in ("serve", "socket"):
            for optional in OPTIONAL_SETTINGS:
                assert optional in text, (command, optional)
        assert "``" not in text


async def _whole_flow(emulator: SlackEmulator) -> str:
    """Maya asks, Arjun approves, Jane gets the card and opens it; returns Jane's link."""
    driver = emulator.driver
    assert (await driver.slash_command(MAYA, TEAM)).responded
    await emulator.wait_for(lambda: emulator.workspace.current_view(MAYA), 10, "the modal")
    await driver.submit_view(MAYA, GOOD_VALUES)
    card = await emulator.wait_for_dm(ARJUN, "asks you to approve")
    assert (await driver.click_button(ARJUN, card.channel, card.ts, APPROVE_ACTION)).responded
    delivery = await emulator.wait_for_dm(JANE, "sent you a reward")
    # The recipient's click carries the whole delivery DM, link included, back to the bot.
    assert (await driver.click_button(JANE, delivery.channel, delivery.ts, "redeem")).responded
    [link] = redeem_urls(emulator.workspace.dm_messages(JANE))
    return link


@asynccontextmanager
async def _serving_json_at_debug(
    emulator: SlackEmulator, env: dict[str, str], tmp_path: Path
) -> AsyncIterator[Path]:
    """A real ``rewardbot serve`` logging JSON at DEBUG to the file it yields, Slack's requests
    pointed at it; stopped cleanly (exit 0) when the block ends."""
    port = free_port()
    log = tmp_path / "stderr.log"
    env = env | {"REWARDBOT_LOG_LEVEL": "debug", "REWARDBOT_LOG_FORMAT": "json"}
    with log.open("wb") as stderr:
        process = await rewardbot(*serve_args(port), env=env, cwd=tmp_path, stderr=stderr)
    try:
        await wait_healthy(port, process=process)
        emulator.set_request_url(f"http://127.0.0.1:{port}{SLACK_PATH}")
        yield log
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 20)
    assert process.returncode == 0, log.read_text()


def _json_lines(log: Path) -> list[dict[str, Any]]:
    """Every line of ``log`` as JSON (a line that is not fails the test), with the fields a
    log pipeline needs, DEBUG lines among them and no Bolt warning."""
    records: list[dict[str, Any]] = [json.loads(line) for line in log.read_text().splitlines()]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert any(r["level"] == "DEBUG" for r in records), "nothing at DEBUG: no proof"
    assert not [r for r in records if BOLT_WARNING in r["message"]]
    return records


async def test_the_json_log_of_a_whole_flow_at_debug_parses_and_holds_no_secret(
    emulator: SlackEmulator, database: str, tmp_path: Path
) -> None:
    async with _serving_json_at_debug(emulator, _env(emulator, database), tmp_path) as log:
        link = await _whole_flow(emulator)

    records = _json_lines(log)
    text = log.read_text()
    secrets = (link, link.rsplit("/", 1)[-1], emulator.bot_token, emulator.signing_secret)
    for secret in (*secrets, emulator.app_token):
        assert secret not in text

    # Every Slack request and every job run is labelled; the approval click and the jobs of
    # reward #1 (its announcements, order and delivery) with the reward.
    handled = [r for r in records if r["logger"] == "handlers.context"]
    jobs = [r for r in records if r["logger"] == "bot.jobs.runner"]
    assert len(handled) >= 4 and all(r.get("request_id") for r in handled), handled
    assert jobs and all(r.get("reward_id") == 1 for r in jobs), jobs
    assert all(r.get("request_id", "").startswith("job-") for r in jobs), jobs
    # Arjun's Approve (Jane's link button names no request).
    clicks = [r for r in handled if "block_actions" in r["message"]]
    assert len(clicks) == 2 and clicks[0].get("reward_id") == 1, clicks
    mentions = [r for r in records if "request 1" in r["message"] or "reward #1" in r["message"]]
    assert all(r.get("reward_id") == 1 for r in mentions), mentions


async def test_the_json_log_of_a_card_with_a_code_and_pin_holds_neither_nor_the_api_key(
    emulator: SlackEmulator, database: str, tmp_path: Path
) -> None:
    """Through a vendor (the CardPlusPay fake) whose cards are a code and a PIN, bought over
    HTTP with an API key: the purchase is in the log, and none of the three is."""
    state = standard_state()
    async with serve(cardpluspay_app(state)) as url:
        env = _env(emulator, database) | {
            "REWARDBOT_PROVIDERS": "cardpluspay",
            "CARDPLUSPAY_API_KEY": CARDPLUSPAY_API_KEY,
            "CARDPLUSPAY_API_URL": f"{url}/v1",
        }
        async with _serving_json_at_debug(emulator, env, tmp_path) as log:
            driver = emulator.driver
            assert (await driver.slash_command(MAYA, TEAM)).responded
            await emulator.wait_for(lambda: emulator.workspace.current_view(MAYA), 10, "modal")
            card = {**GOOD_VALUES, "card": "cardpluspay:GOOGLE-5USD-KOXx", "amount": "5"}
            await driver.submit_view(MAYA, card)
            ask = await emulator.wait_for_dm(ARJUN, "asks you to approve")
            assert (await driver.click_button(ARJUN, ask.channel, ask.ts, APPROVE_ACTION)).responded
            await emulator.wait_for_dm(JANE, "sent you a reward")

    [order] = state.orders
    assert order.code and order.pin
    # Jane got them: the secrets were in the bot's hands.
    delivered = repr(emulator.workspace.dm_messages(JANE))
    assert order.code in delivered and order.pin in delivered
    records = _json_lines(log)
    # The purchase's round trip is in the log (its request and answer carried key, code, PIN).
    assert [r for r in records if r["logger"] == "httpx" and "/v1/orders " in r["message"]]
    text = log.read_text()
    for secret in (order.code, order.pin, CARDPLUSPAY_API_KEY, emulator.bot_token):
        assert secret not in text
    assert emulator.signing_secret not in text
