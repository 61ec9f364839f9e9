"""Run the real bot against the built-in Slack emulator on this machine.

Used by ``rewardbot demo``, the end-to-end tests and the benchmarks: the bot is the same one
``rewardbot serve`` and ``rewardbot socket`` run, listening on an ephemeral local port (or
connected over Socket Mode), and every Web API call it makes lands on the emulator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

from bot.app import build_app, socket_mode_connection
from bot.config import load_settings
from bot.offline.emulator import SlackEmulator
from bot.runtime import Runtime
from bot.server import SLACK_PATH, build_web_app
from providers.base import Provider


@asynccontextmanager
async def running_bot(
    emulator: SlackEmulator,
    *,
    database: Path | str,
    approvers: Sequence[str] = (),
    policy: Path | None = None,
    providers: Mapping[str, Provider] | None = None,
    socket_mode: bool = False,
    fulfillment_retry_delay: float = 0.05,
    job_lease_seconds: float = 30.0,
    slack_pacing: bool = True,
) -> AsyncIterator[Runtime]:
    """Start the bot wired to ``emulator``; stop it (as SIGTERM would) on exit. The approvers
    are ``approvers`` (REWARDBOT_APPROVERS) or the ``policy`` file (REWARDBOT_POLICY);
    ``slack_pacing`` is REWARDBOT_SLACK_PACING."""
    settings = load_settings(
        SLACK_BOT_TOKEN=emulator.bot_token,
        SLACK_SIGNING_SECRET=emulator.signing_secret,
        SLACK_APP_TOKEN=emulator.app_token,
        SLACK_API_URL=emulator.api_url,
        REWARDBOT_DATABASE=database,
        REWARDBOT_APPROVERS=",".join(approvers),
        REWARDBOT_POLICY=policy,
        REWARDBOT_PROVIDERS=",".join(providers) if providers else "sandbox",
        REWARDBOT_JOB_LEASE_SECONDS=job_lease_seconds,
        REWARDBOT_SLACK_PACING=slack_pacing,
    )
    runtime = await Runtime.create(
        settings, providers=providers, fulfillment_retry_delay=fulfillment_retry_delay
    )
    if socket_mode:
        emulator.use_socket_mode()
        async with socket_mode_connection(runtime, emulator.app_token):
            yield runtime
        return
    runner = web.AppRunner(build_web_app(runtime, build_app(runtime)), handle_signals=False)
    await runner.setup()  # runs on_startup: the runtime starts
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        emulator.set_request_url(f"http://127.0.0.1:{port}{SLACK_PATH}")
        yield runtime
    finally:
        await runner.cleanup()  # runs on_cleanup: the runtime closes
