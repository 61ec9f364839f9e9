"""``rewardbot serve | socket | demo | export``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sqlite3
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from aiohttp import web

from bot.app import build_app, socket_mode_connection
from bot.config import RunMode, Settings, load_settings
from bot.errors import ConfigError
from bot.health import health_server
from bot.redaction import REDACTOR
from bot.reports import export_requests
from bot.runtime import Runtime
from bot.server import build_web_app
from bot.store import Store

log = logging.getLogger("rewardbot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rewardbot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="receive Slack's requests over HTTP")
    serve.add_argument("--host", default="0.0.0.0", help="interface to listen on")  # noqa: S104
    serve.add_argument("--port", type=int, default=3000, help="port to listen on")
    commands.add_parser("socket", help="receive Slack's requests over Socket Mode")
    commands.add_parser("demo", help="walk a reward through the bot offline, printing each step")
    export = commands.add_parser(
        "export",
        help="write the requests made between two dates (UTC, inclusive) as CSV or JSON",
    )
    export.add_argument("--since", type=_date, required=True, help="first day, YYYY-MM-DD")
    export.add_argument("--until", type=_date, help="last day, YYYY-MM-DD (default: today)")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--output", type=Path, help="file to write (default: standard output)")
    return parser


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-01") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # The demo prints what people see; only problems should interrupt it.
    level = logging.WARNING if args.command in ("demo", "export") else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    REDACTOR.install()
    try:
        if args.command == "demo":
            from bot.offline.demo import run_demo

            return asyncio.run(run_demo())
        settings = load_settings()
        if args.command == "export":
            return asyncio.run(_export(settings, args))
        if args.command == "serve":
            settings.require(RunMode.HTTP)
            web.run_app(_serve(settings), host=args.host, port=args.port, print=None)
        else:
            settings.require(RunMode.SOCKET)
            asyncio.run(_socket(settings))
    except ConfigError as exc:
        print(f"rewardbot: {exc}", file=sys.stderr)
        return 2
    return 0


async def _export(settings: Settings, args: argparse.Namespace) -> int:
    until: date = args.until or datetime.now(UTC).date()
    if until < args.since:
        raise ConfigError(f"--until {until} is before --since {args.since}.")
    if not settings.database.exists():
        raise ConfigError(f"No database at {settings.database} (REWARDBOT_DATABASE).")
    try:
        store = await Store.open_read_only(str(settings.database.resolve()))
    except (RuntimeError, sqlite3.Error) as exc:
        raise ConfigError(f"Cannot read {settings.database}: {exc}.") from None
    try:
        text = await export_requests(
            store,
            datetime.combine(args.since, time(), UTC),
            datetime.combine(until + timedelta(days=1), time(), UTC),
            args.format,
        )
    finally:
        await store.close()
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0


async def _serve(settings: Settings) -> web.Application:
    runtime = await Runtime.create(settings)
    log.info("serving Slack requests over HTTP")
    return build_web_app(runtime, build_app(runtime))


async def _socket(settings: Settings) -> None:
    runtime = await Runtime.create(settings)
    assert settings.slack_app_token is not None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as running:
        # Up before the connection, so an orchestrator sees the process alive (not yet ready).
        if settings.health_port is not None:
            await running.enter_async_context(health_server(runtime, settings.health_port))
            log.info("answering health and metrics on port %s", settings.health_port)
        token = settings.slack_app_token.get_secret_value()
        await running.enter_async_context(socket_mode_connection(runtime, token))
        log.info("connected to Slack over Socket Mode")
        await stop.wait()
