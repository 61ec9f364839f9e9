"""The ``rewardbot`` command: ``serve``, ``socket``, ``migrate``, ``copy-db``, ``demo`` and
``export``."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import sqlite3
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from importlib.metadata import version
from pathlib import Path

from aiohttp import web

from bot.app import build_app, socket_mode_connection
from bot.config import RunMode, Settings, load_settings
from bot.errors import ConfigError
from bot.health import cannot_listen
from bot.logs import setup_logging
from bot.reports import export_requests
from bot.runtime import Runtime
from bot.server import build_web_app
from bot.store import DATABASE_ERRORS, DatabaseUrl, Store, database_problem
from bot.store.copy import CopyRefused, copy_database

log = logging.getLogger("rewardbot")

_DESCRIPTION = """\
A Slack bot that sends gift cards as rewards, once an approver agrees.

Settings are read from the environment and from a .env file in the current
directory; README.md (Settings) and .env.example list them all."""

_EPILOG = "Run rewardbot COMMAND --help for what a command does and the settings it needs."

_SETTINGS = """\
needs: SLACK_BOT_TOKEN, {credential}, REWARDBOT_PROVIDERS, and
REWARDBOT_APPROVERS or REWARDBOT_POLICY; optional: REWARDBOT_DATABASE
(default rewardbot.db), REWARDBOT_HEALTH_PORT, REWARDBOT_LOG_LEVEL,
REWARDBOT_LOG_FORMAT, REWARDBOT_JOB_RETENTION_DAYS,
REWARDBOT_JOB_LEASE_SECONDS, REWARDBOT_SLACK_TIMEOUT_SECONDS, SLACK_API_URL
and the settings of each enabled provider (defaults in .env.example)."""

_SERVE = f"""\
Receive Slack's requests over HTTP at /slack/events (and provider webhooks
at /webhooks/<provider>), and run the queued jobs, until stopped.

{_SETTINGS.format(credential="SLACK_SIGNING_SECRET")}"""

_SOCKET = f"""\
Connect to Slack over Socket Mode (no public URL needed) and run the queued
jobs, until stopped.

{_SETTINGS.format(credential="SLACK_APP_TOKEN (xapp-...)")}"""

_MIGRATE = """\
Bring the database's schema up to this rewardbot's, then exit. serve and
socket do the same when they start, under a lock, so processes starting
together upgrade it once; run this first to upgrade during a deploy instead.

needs: REWARDBOT_DATABASE (default rewardbot.db: a SQLite file path, or a
postgresql://user@host:5432/name URL)."""

_COPY_DB = """\
Copy every row of one rewardbot database into another, ids and all, in one
transaction: to move an installation from SQLite to PostgreSQL (or back).
The target must be empty; its schema is created. The source must be at this
rewardbot's schema, and should have no bot running on it: what a bot writes
after the copy began is not copied. Prints the rows copied per table.

needs: --from and --to, each a SQLite file path or a
postgresql://user@host:5432/name URL; reads no settings."""

_DEMO = """\
Walk one reward through the whole bot offline, against a built-in Slack
emulator and the sandbox provider, printing what each person sees.

needs: no settings; nothing leaves this machine."""

_EXPORT = """\
Write the requests made between two dates (UTC, inclusive) as CSV or JSON,
read from the database without blocking a running bot.

needs: REWARDBOT_DATABASE (default rewardbot.db), an existing database."""

# Commands that print for people: only problems should interrupt them.
_QUIET_COMMANDS = ("demo", "export", "migrate")


def _parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="rewardbot", description=_DESCRIPTION, epilog=_EPILOG, formatter_class=formatter
    )
    parser.add_argument("--version", action="version", version=f"rewardbot {version('rewardbot')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=summary, description=description, formatter_class=formatter
        )

    serve = command("serve", "receive Slack's requests over HTTP", _SERVE)
    serve.add_argument("--host", default="0.0.0.0", help="interface to listen on")  # noqa: S104
    serve.add_argument("--port", type=int, default=3000, help="port to listen on")
    command("socket", "receive Slack's requests over Socket Mode", _SOCKET)
    command("migrate", "bring the database's schema up to date, then exit", _MIGRATE)
    copy_db = command("copy-db", "copy every row of one database into an empty one", _COPY_DB)
    copy_db.add_argument(
        "--from", dest="source", metavar="URL", required=True, help="the database to copy"
    )
    copy_db.add_argument(
        "--to", dest="target", metavar="URL", required=True, help="an empty database"
    )
    command("demo", "walk a reward through the bot offline, printing each step", _DEMO)
    export = command("export", "write the requests made between two dates as CSV or JSON", _EXPORT)
    export.add_argument("--since", type=_date, required=True, help="first day, YYYY-MM-DD")
    export.add_argument("--until", type=_date, help="last day, YYYY-MM-DD (default: today)")
    export.add_argument("--format", choices=("csv", "json"), default="csv", help="default: csv")
    export.add_argument("--output", type=Path, help="file to write (default: standard output)")
    return parser


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-01") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from bot.offline.demo import run_demo

            setup_logging("WARNING", "text")
            return asyncio.run(run_demo())
        if args.command == "copy-db":
            setup_logging("WARNING", "text")
            return asyncio.run(_copy_db(args.source, args.target))
        # Before the settings are read, nothing is logged: a problem with them is one line.
        settings = load_settings()
        quiet = args.command in _QUIET_COMMANDS and settings.log_level in ("DEBUG", "INFO")
        setup_logging("WARNING" if quiet else settings.log_level, settings.log_format)
        if args.command == "export":
            return asyncio.run(_export(settings, args))
        if args.command == "migrate":
            return asyncio.run(_migrate(settings))
        if args.command == "serve":
            settings.require(RunMode.HTTP)
            _run_serve(settings, args.host, args.port)
        else:
            settings.require(RunMode.SOCKET)
            asyncio.run(_socket(settings))
    except ConfigError as exc:
        # One line, whatever the message quotes (a pydantic report, a TOML error).
        print(f"rewardbot: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0


async def _export(settings: Settings, args: argparse.Namespace) -> int:
    until: date = args.until or datetime.now(UTC).date()
    if until < args.since:
        raise ConfigError(f"--until {until} is before --since {args.since}.")
    path = settings.database.sqlite_path
    if path is not None and not path.exists():
        raise ConfigError(f"No database at {settings.database} (REWARDBOT_DATABASE).")
    try:
        store = await Store.open_read_only(settings.database)
    except (RuntimeError, *DATABASE_ERRORS) as exc:
        raise ConfigError(f"Cannot read {settings.database}: {database_problem(exc)}.") from None
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


async def _copy_db(source: str, target: str) -> int:
    """Copy the database ``source`` into the empty ``target``, printing what was copied."""
    source_url, target_url = _database(source, "--from"), _database(target, "--to")
    try:
        copied = await copy_database(source_url, target_url)
    except CopyRefused as exc:
        raise ConfigError(str(exc)) from None
    for table in copied:
        print(f"{table.name}: {table.rows} rows")
    total = sum(table.rows for table in copied)
    print(f"rewardbot: copied {total} rows from {source_url} to {target_url}.")
    return 0


def _database(value: str, option: str) -> DatabaseUrl:
    try:
        return DatabaseUrl.parse(value)
    except ValueError as exc:  # its message never quotes the value, so never a password
        raise ConfigError(f"{option} {exc}.") from None


async def _migrate(settings: Settings) -> int:
    """Bring the database's schema to this rewardbot's (what serve and socket do at start)."""
    store = await _open_store(settings)
    await store.close()
    print(f"rewardbot: {settings.database} is up to date.")
    return 0


async def _open_store(settings: Settings) -> Store:
    try:
        path = settings.database.sqlite_path
        if path is not None:
            # Opened once with sqlite3 first: a file aiosqlite cannot open (a directory, a
            # missing directory) it reports from a thread that outlives the event loop.
            sqlite3.connect(path).close()
        return await Store.open(settings.database)
    except (RuntimeError, *DATABASE_ERRORS) as exc:
        raise ConfigError(
            f"Cannot open the database {settings.database} (REWARDBOT_DATABASE): "
            f"{database_problem(exc)}."
        ) from None


async def _runtime(settings: Settings) -> Runtime:
    # The database first: its problems are the admin's to fix, one line each.
    await (await _open_store(settings)).close()
    return await Runtime.create(settings)


def _run_serve(settings: Settings, host: str, port: int) -> None:
    try:
        web.run_app(_serve(settings), host=host, port=port, print=None)
    except OSError as exc:
        # Only listening fails so (the runtime's own network errors are not these): the app
        # has started, and run_app closed it again before raising.
        if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        raise cannot_listen(f"--port {port} (--host {host})", exc) from None


async def _serve(settings: Settings) -> web.Application:
    runtime = await _runtime(settings)
    log.info("serving Slack requests over HTTP")
    try:
        return build_web_app(runtime, build_app(runtime))
    except BaseException:
        # The web app closes the runtime only once it has started: close it here, or the
        # database's thread keeps the process from exiting.
        await runtime.aclose()
        raise


async def _socket(settings: Settings) -> None:
    runtime = await _runtime(settings)
    assert settings.slack_app_token is not None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    token = settings.slack_app_token.get_secret_value()
    async with socket_mode_connection(runtime, token, health_port=settings.health_port):
        log.info("connected to Slack over Socket Mode")
        await stop.wait()
