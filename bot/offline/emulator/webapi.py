"""The ``/api/<method>`` endpoint: argument parsing, auth, call log, injected failures.

slack_sdk sends some methods as JSON, others as form fields or query parameters, and
the token as a Bearer header or a ``token`` field; Slack accepts all of these, so the
emulator merges them the same way before dispatching to a method implementation.
Errors are HTTP 200 with ``ok: false`` (except injected 429s), as in Slack.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.offline.emulator import methods_chat, methods_misc, methods_views
from bot.offline.emulator.context import JSON, ApiContext
from bot.offline.emulator.errors import ApiError

Method = Callable[[ApiContext, JSON], JSON]

METHODS: dict[str, Method] = {
    "auth.test": methods_misc.auth_test,
    "users.info": methods_misc.users_info,
    "usergroups.users.list": methods_misc.usergroups_users_list,
    "conversations.open": methods_misc.conversations_open,
    "apps.connections.open": methods_misc.apps_connections_open,
    "chat.postMessage": methods_chat.post_message,
    "chat.update": methods_chat.update,
    "chat.postEphemeral": methods_chat.post_ephemeral,
    "chat.getPermalink": methods_chat.get_permalink,
    "conversations.history": methods_chat.history,
    "views.open": methods_views.views_open,
    "views.push": methods_views.views_push,
    "views.update": methods_views.views_update,
    "views.publish": methods_views.views_publish,
}
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})


@dataclass
class ApiCall:
    """One recorded Web API call, for assertions on what the bot asked Slack to do."""

    method: str
    args: JSON
    response: JSON = field(default_factory=dict)
    # When the emulator received it (``time.monotonic()``), for latency figures.
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        """Whether Slack (the emulator) accepted the call."""
        return bool(self.response.get("ok"))


@dataclass
class _Failure:
    error: str
    status: int
    retry_after: int | None


CallHook = Callable[[JSON], Awaitable[None]]


@dataclass
class _Hook:
    method: str
    matches: Callable[[JSON], bool]
    callback: CallHook
    after: bool


class WebApi:
    """Handles Web API requests against an ``ApiContext`` and remembers every call."""

    def __init__(self, ctx: ApiContext, bot_token: str, app_token: str) -> None:
        self.ctx = ctx
        self.bot_token = bot_token
        self.app_token = app_token
        self.calls: list[ApiCall] = []
        self._failures: dict[str, deque[_Failure]] = {}
        self._hooks: list[_Hook] = []

    def on_next_call(
        self,
        method: str,
        callback: CallHook,
        *,
        matches: Callable[[JSON], bool] = lambda _: True,
        after: bool = False,
    ) -> None:
        """Run ``callback(args)`` once, on the next matching call of ``method``: before Slack
        acts on it, or ``after`` it acted but before the caller gets the answer (tests use it
        to crash the bot at an exact point)."""
        self._hooks.append(_Hook(method, matches, callback, after))

    async def _run_hooks(self, method: str, args: JSON, *, after: bool) -> None:
        for hook in list(self._hooks):
            if hook.method == method and hook.after == after and hook.matches(args):
                self._hooks.remove(hook)
                await hook.callback(args)

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        status: int = 200,
        retry_after: int | None = None,
    ) -> None:
        """Make the next call of ``method`` fail; ``status=429`` adds ``Retry-After``."""
        if status == 429 and retry_after is None:
            retry_after = 1
        self._failures.setdefault(method, deque()).append(_Failure(error, status, retry_after))

    def calls_to(self, method: str) -> list[ApiCall]:
        """Recorded calls of one method, oldest first."""
        return [c for c in self.calls if c.method == method]

    async def handle(self, request: web.Request) -> web.Response:
        """aiohttp handler for ``/api/{method}``."""
        method = request.match_info["method"]
        args = await _parse_args(request)
        token = _token(request, args)
        await self._run_hooks(method, args, after=False)
        call = ApiCall(method, args)
        self.calls.append(call)
        headers: dict[str, str] = {}
        status = 200
        try:
            self._authorize(method, token)
            failure = self._pop_failure(method)
            if failure is not None:
                status = failure.status
                if failure.retry_after is not None:
                    headers["Retry-After"] = str(failure.retry_after)
                raise ApiError(failure.error)
            impl = METHODS.get(method)
            if impl is None:
                raise ApiError("unknown_method")
            call.response = impl(self.ctx, args)
        except ApiError as exc:
            call.response = exc.to_body()
        await self._run_hooks(method, args, after=True)
        return web.json_response(call.response, status=status, headers=headers)

    def _authorize(self, method: str, token: str | None) -> None:
        if not token:
            raise ApiError("not_authed")
        if token not in (self.bot_token, self.app_token):
            raise ApiError("invalid_auth")
        wants_app_token = method in APP_TOKEN_METHODS
        if (token == self.app_token) != wants_app_token:
            raise ApiError("not_allowed_token_type")

    def _pop_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        return queue.popleft() if queue else None


async def _parse_args(request: web.Request) -> JSON:
    """Merge query parameters with a JSON or form body (later sources win)."""
    args: JSON = dict(request.query)
    if request.method != "POST" or not request.can_read_body:
        return args
    if request.content_type == "application/json":
        try:
            body: Any = json.loads(await request.text() or "{}")
        except json.JSONDecodeError:
            body = {}
        if isinstance(body, dict):
            args.update(body)
    else:
        form = await request.post()
        args.update({k: v for k, v in form.items() if isinstance(v, str)})
    return args


def _token(request: web.Request, args: JSON) -> str | None:
    """Bearer header first, else the ``token`` field (always removed from the log)."""
    field_token = args.pop("token", None)
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth.removeprefix("Bearer ").strip()
    return str(field_token) if field_token else None
