"""The HTTP endpoints: ``POST /slack/events`` for everything Slack sends, provider webhooks,
and the health and metrics endpoints of :mod:`bot.health` (also on ``REWARDBOT_HEALTH_PORT``
if it is set, so one probe configuration fits both ``serve`` and ``socket``)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.health import add_health_routes, health_server
from bot.log_context import log_context, new_request_id
from bot.runtime import Runtime
from bot.slack.signature import RequestRefused, SlackSignature
from providers.errors import WebhookRejected

SLACK_PATH = "/slack/events"
# Gift-card providers post order updates here, e.g. /webhooks/runa.
WEBHOOK_PATH = "/webhooks/{provider}"

log = logging.getLogger(__name__)


def _as_form_if_misread(request: AsyncBoltRequest) -> AsyncBoltRequest:
    """slack_bolt reads any form body that merely *contains* the word "payload" as an
    interaction, so ``/reward payload bonus`` would arrive empty and go unanswered. A form
    without a ``payload`` field is a plain form (a slash command): read it as one."""
    if request.body or not request.raw_body or request.raw_body.startswith("{"):
        return request
    form = dict(parse_qsl(request.raw_body, keep_blank_values=True))
    if form and "payload" not in form:
        request.body = form
        request.context = build_async_context(AsyncBoltContext({}), form)
    return request


def build_web_app(runtime: Runtime, bolt_app: AsyncApp) -> web.Application:
    secret = runtime.settings.slack_signing_secret
    assert secret is not None, "serve requires SLACK_SIGNING_SECRET"
    signature = SlackSignature(secret.get_secret_value())

    async def slack_events(request: web.Request) -> web.Response:
        try:
            body = await signature.verified_body(request)
        except RequestRefused as refused:
            return refused.response()
        bolt_request = AsyncBoltRequest(
            body=body.decode("utf-8", errors="replace"),
            query=request.query_string,
            headers=request.headers,  # type: ignore[arg-type]
        )
        bolt_response = await bolt_app.async_dispatch(_as_form_if_misread(bolt_request))
        return await to_aiohttp_response(bolt_response)

    async def provider_webhook(request: web.Request) -> web.Response:
        with log_context(new_request_id()):
            return await _order_changed(runtime, request)

    web_app = web.Application()
    web_app.router.add_post(SLACK_PATH, slack_events)
    web_app.router.add_post(WEBHOOK_PATH, provider_webhook)
    add_health_routes(web_app, runtime)
    _run_with(web_app, runtime)
    return web_app


async def _order_changed(runtime: Runtime, request: web.Request) -> web.Response:
    """A provider's webhook: verified by its adapter, it only makes the order's job due."""
    provider = runtime.providers.get(request.match_info["provider"])
    if provider is None:
        raise web.HTTPNotFound(text="no such provider is enabled")
    try:
        notice = await provider.parse_webhook(request.headers, await request.read())
    except WebhookRejected as rejected:
        log.warning("rejected a %s webhook: %s", provider.name, rejected.message)
        raise web.HTTPBadRequest(text=rejected.message) from None
    if notice is not None:
        await runtime.fulfillment.order_changed(provider.name, notice.provider_order_id)
    return web.json_response({"ok": True})


def _run_with(web_app: web.Application, runtime: Runtime) -> None:
    """Start ``runtime`` with the web app, serving the health port too if one is set, and
    close both with it. A start that fails closes them at once: aiohttp runs no cleanup after
    a failed start, and the database's thread would keep the process from exiting."""
    health_port = runtime.settings.health_port

    async def running(_: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as parts:
            parts.push_async_callback(runtime.aclose)
            if health_port is not None:
                await parts.enter_async_context(health_server(runtime, health_port))
            await runtime.start()
            yield

    web_app.cleanup_ctx.append(running)
