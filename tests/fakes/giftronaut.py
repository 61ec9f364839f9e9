"""A fake Giftronaut API that behaves as the vendor notes say (and as the adapter's docstring
reads them where they are silent or conflict).

* ``POST /oauth2/token``: form-encoded client credentials; ``401 invalid_client`` for bad ones,
  ``400 invalid_scope`` for a scope the app does not have; tokens expire after ``token_ttl``.
* Every ``/api/v1`` call needs ``Authorization: Bearer <live token>`` (else ``401``) and the
  scope of its endpoint (else ``403 INSUFFICIENT_SCOPE``).
* Orders: the body ``idempotencyKey`` (required, ≤ 64) is what is enforced; an
  ``X-Idempotency-Key`` header, if sent, must equal it. A key seen within ``replay_window``
  seconds with the same body returns ``200`` + the original order (the operation is not re-run);
  with another body ``409 DUPLICATE_IDEMPOTENCY_KEY``. After the window the key is forgotten (a
  replay places a new order — the hazard the adapter guards against).
* New orders are ``PENDING`` and become ``IN_PROGRESS`` and then ``COMPLETE`` as they are
  fetched (``polls_to_complete``; 0 = complete at once, as the sandbox does). ``rewardLink`` is
  set only when ``COMPLETE``. Scheduled orders stay ``PENDING``.
* Balance in USD (``balance_usd``, rates in ``usd_rates``): an order that costs more →
  ``INSUFFICIENT_BALANCE`` (status ``insufficient_status``).
* Switches: :meth:`GiftronautState.fail_next_with` (any call, or only order creation: before
  it, after the order was created, or only a replay of a known key),
  :meth:`rate_limit_next`, :meth:`drop_next_after_processing`, :meth:`revoke_tokens`,
  ``out_of_stock``, ``completion_delay`` / :meth:`delay_next_completion` (an order stays
  pending for that many seconds, however often it is fetched).
* Inspection: ``created_orders``, ``created_keys`` (one per order that exists), and
  :meth:`GiftronautState.orders_for_request` (by the bot's ``rewardbot-<id>-…`` key).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from multidict import CIMultiDict

from tests.fakes import drop_connection, request_id_of_key

CLIENT_ID = "gt-client-7f3a"
CLIENT_SECRET = "gt-secret-9b1c2d3e4f5a6b7c"
ALL_SCOPES = frozenset(
    {"catalog.read", "orders.read", "orders.write", "orders.cancel", "balance.read"}
)

BRANDED: list[dict[str, Any]] = [
    {"productId": "10042", "brandName": "Amazon", "currency": "USD", "prices": [25, 50, 100]},
    {
        "productId": "20077",
        "brandName": "Starbucks",
        "currency": "GBP",
        "minPrice": 5,
        "maxPrice": 250.5,
    },
    {"productId": "30011", "brandName": "Rakuten", "currency": "JPY", "prices": [1000, 3000]},
    # Unreadable: no currency, no prices. The adapter must skip it.
    {"productId": "99999", "brandName": "Broken"},
]
CHOICE: list[dict[str, Any]] = [
    {"productId": "55", "name": "Global Choice", "currency": "USD", "prices": [5, 500]},
]


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: CIMultiDict[str]  # case-insensitive, as HTTP headers are
    body: Any


@dataclass
class _Failure:
    """An injected answer: for ``route`` "any" call or only an order "create"; before the call
    does anything, or (creates only) after the order was created; ``replay_only``: only for a
    create whose key is already known."""

    status: int
    code: str | None
    retry_after: float | None = None
    route: Literal["any", "create"] = "any"
    after_processing: bool = False
    replay_only: bool = False


@dataclass
class FakeOrder:
    order_id: str
    card_type: str
    product_id: str
    idempotency_key: str
    body: dict[str, Any]
    status: str
    cost_usd: Decimal
    polls_left: int
    created: float
    reward_link: str | None = None
    # The order stays pending until then (the fake's clock), however often it is fetched.
    ready_at: float = 0.0
    resends: list[dict[str, str]] = field(default_factory=list)
    # Addresses Giftronaut issued no card for; a completed order lists only issued cards.
    unissued: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        complete = self.status == "COMPLETE"
        return {
            "orderId": self.order_id,
            "orderType": "ONE_TIME",
            "cardType": self.card_type,
            "status": self.status,
            "totalCost": {"amount": self.cost_usd, "currency": "USD"},
            "recipients": [
                {
                    "email": r["email"],
                    "amount": r["amount"],
                    "rewardLink": self.reward_link if complete else None,
                }
                for r in self.body["recipients"]
                if not (complete and r["email"] in self.unissued)
            ],
        }


@dataclass
class GiftronautState:
    token_ttl: int = 3600
    polls_to_complete: int = 2
    replay_window: float = 24 * 3600.0
    balance_usd: Decimal = Decimal(10000)
    usd_rates: dict[str, Decimal] = field(
        default_factory=lambda: {
            "USD": Decimal(1),
            "GBP": Decimal("1.25"),
            "JPY": Decimal("0.0067"),
        }
    )
    insufficient_status: int = 402
    out_of_stock: set[str] = field(default_factory=set)
    # Recipients whose card Giftronaut will not issue (an order completes without them).
    unissued: set[str] = field(default_factory=set)
    # Rewrites every order object the fake answers with (undocumented shapes).
    reshape: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    app_scopes: frozenset[str] = ALL_SCOPES
    branded: list[dict[str, Any]] = field(default_factory=lambda: [dict(p) for p in BRANDED])
    choice: list[dict[str, Any]] = field(default_factory=lambda: [dict(p) for p in CHOICE])
    # How the catalog is wrapped: "data", "products", "items" or "bare" (a plain list).
    catalog_wrapper: str = "data"
    # Fake clock offset in seconds (advance() moves it), for token expiry and key windows.
    offset: float = 0.0
    # Every new order stays pending at least this many seconds (delay_next_completion: one).
    completion_delay: float = 0.0

    tokens: dict[str, tuple[float, frozenset[str]]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    orders: dict[str, FakeOrder] = field(default_factory=dict)
    keys: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    requests: list[SeenRequest] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _token_failures: list[int] = field(default_factory=list)
    _drop_after: int = 0
    _delays: list[float] = field(default_factory=list)

    # -- switches -----------------------------------------------------------------------

    def order_json(self, order: FakeOrder) -> dict[str, Any]:
        body = order.to_json()
        return self.reshape(body) if self.reshape else body

    def fail_next_with(
        self,
        status: int,
        code: str | None = None,
        *,
        times: int = 1,
        route: Literal["any", "create"] = "any",
        after_processing: bool = False,
        replay_only: bool = False,
    ) -> None:
        """The next ``times`` API calls answer ``status`` before doing anything.

        ``route="create"``: only order creations count. With ``after_processing`` the order is
        created first (and its key remembered), then ``status`` is answered instead of it;
        with ``replay_only`` only a create whose key the fake already knows (a replay) gets
        the answer, before anything is done."""
        if (after_processing or replay_only) and route != "create":
            raise ValueError("after_processing and replay_only are for route='create'")
        if after_processing and replay_only:
            raise ValueError("a replay creates nothing: after_processing is for new orders")
        self._failures += [
            _Failure(status, code, None, route, after_processing, replay_only) for _ in range(times)
        ]

    def rate_limit_next(self, retry_after: float) -> None:
        self._failures.append(_Failure(429, "RATE_LIMIT_EXCEEDED", retry_after))

    def delay_next_completion(self, seconds: float, *, times: int = 1) -> None:
        """The next ``times`` new orders stay pending for ``seconds`` (instead of
        ``completion_delay``), however often they are fetched."""
        self._delays += [seconds] * times

    def _take_failure(
        self, *, creating: bool, replay: bool, after_processing: bool
    ) -> _Failure | None:
        for failure in self._failures:
            if (
                failure.after_processing == after_processing
                and (failure.route == "any" or creating)
                and (replay or not failure.replay_only)
            ):
                self._failures.remove(failure)
                return failure
        return None

    def fail_next_token_with(self, status: int, *, times: int = 1) -> None:
        self._token_failures += [status] * times

    def drop_next_after_processing(self, times: int = 1) -> None:
        """The next order create/cancel/resend is done, then the connection drops."""
        self._drop_after += times

    def revoke_tokens(self) -> None:
        """Every issued token stops working (the next call gets 401)."""
        self.tokens.clear()

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def now(self) -> float:
        return time.monotonic() + self.offset

    # -- inspection ---------------------------------------------------------------------

    @property
    def created_orders(self) -> list[FakeOrder]:
        return list(self.orders.values())

    @property
    def created_keys(self) -> list[str]:
        """The idempotency key of every order that exists (cancelled ones left out): two
        entries for one reward request are two cards."""
        return [o.idempotency_key for o in self.orders.values() if o.status != "CANCELED"]

    def orders_for_request(self, request_id: int) -> list[FakeOrder]:
        """The orders (cancelled ones too) placed under the bot's keys for ``request_id``."""
        return [
            o for o in self.orders.values() if request_id_of_key(o.idempotency_key) == request_id
        ]

    def _is_replay(self, key: object) -> bool:
        known = self.keys.get(key) if isinstance(key, str) else None
        return known is not None and self.now() - known[2] <= self.replay_window

    def seen(self, method: str, path_part: str) -> list[SeenRequest]:
        return [r for r in self.requests if r.method == method and path_part in r.path]


def _dumps(value: Any) -> str:
    """JSON with Decimals written as exact numbers."""

    def mark(obj: Any) -> str:
        if isinstance(obj, Decimal):
            return f"__decimal__{obj}"
        raise TypeError(type(obj))

    return re.sub(
        r'"__decimal__([-0-9.E+]+)"', r"\1", json.dumps(value, default=mark, sort_keys=True)
    )


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, text=_dumps(body), content_type="application/json", headers=headers
    )


def _error(status: int, code: str, message: str) -> web.Response:
    return _json(status, {"error": code, "message": message})


def app(state: GiftronautState) -> web.Application:
    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        fields = {k: str(v) for k, v in form.items()}
        state.token_requests.append(fields)
        if state._token_failures:
            return _error(state._token_failures.pop(0), "server_error", "try again")
        if fields.get("grant_type") != "client_credentials":
            return _error(400, "unsupported_grant_type", "use client_credentials")
        if fields.get("client_id") != CLIENT_ID or fields.get("client_secret") != CLIENT_SECRET:
            return _error(401, "invalid_client", "Client authentication failed")
        scopes = frozenset(fields.get("scope", "").split())
        if not scopes <= state.app_scopes:
            return _error(400, "invalid_scope", "scope not allowed for this app")
        value = "eyJ" + secrets.token_urlsafe(24)
        state.tokens[value] = (state.now() + state.token_ttl, scopes)
        return _json(
            200,
            {
                "access_token": value,
                "token_type": "Bearer",
                "expires_in": state.token_ttl,
                "scope": " ".join(sorted(scopes)),
            },
        )

    def _injected(failure: _Failure) -> web.Response:
        retry_after = failure.retry_after
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
        return _json(
            failure.status, {"error": failure.code or "ERROR", "message": "injected"}, headers
        )

    async def guard(
        request: web.Request, scope: str, *, creating: bool = False
    ) -> web.Response | None:
        """Record the call, check auth and scope, apply injected failures."""
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw, parse_float=Decimal)
            except ValueError:
                body = raw.decode(errors="replace")
        state.requests.append(
            SeenRequest(request.method, request.path, CIMultiDict(request.headers), body)
        )
        auth = request.headers.get("Authorization", "")
        live = (
            state.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
        )
        if live is None or live[0] <= state.now():
            return _error(401, "UNAUTHORIZED", "Missing or expired access token")
        if scope not in live[1]:
            return _error(403, "INSUFFICIENT_SCOPE", f"This call needs {scope}")
        replay = (
            creating and isinstance(body, dict) and state._is_replay(body.get("idempotencyKey"))
        )
        failure = state._take_failure(creating=creating, replay=replay, after_processing=False)
        return None if failure is None else _injected(failure)

    async def catalog(request: web.Request) -> web.Response:
        if (refused := await guard(request, "catalog.read")) is not None:
            return refused
        items = state.branded if request.match_info["kind"] == "branded" else state.choice
        if state.catalog_wrapper == "bare":
            return _json(200, items)
        return _json(200, {state.catalog_wrapper: items, "page": 1})

    def validate(kind: str, body: Any, header_key: str | None) -> web.Response | None:
        if not isinstance(body, dict):
            return _error(400, "VALIDATION_ERROR", "body must be a JSON object")
        key = body.get("idempotencyKey")
        if not isinstance(key, str) or not 1 <= len(key) <= 64:
            return _error(400, "VALIDATION_ERROR", "idempotencyKey is required (max 64)")
        if header_key is not None and header_key != key:
            return _error(400, "VALIDATION_ERROR", "X-Idempotency-Key differs from body")
        timing = body.get("sendTiming")
        if not isinstance(timing, dict) or timing.get("type") not in ("IMMEDIATE", "SCHEDULED"):
            return _error(400, "VALIDATION_ERROR", "sendTiming.type is required")
        scheduled = {"scheduledAt", "timezone"} & timing.keys()
        if timing["type"] == "IMMEDIATE" and scheduled:
            return _error(400, "VALIDATION_ERROR", "IMMEDIATE takes no scheduledAt/timezone")
        if timing["type"] == "SCHEDULED" and len(scheduled) != 2:
            return _error(400, "VALIDATION_ERROR", "SCHEDULED needs scheduledAt and timezone")
        setting = body.get("emailSetting")
        if (
            not isinstance(setting, dict)
            or not setting.get("senderName")
            or not setting.get("subject")
        ):
            return _error(400, "VALIDATION_ERROR", "emailSetting.senderName/subject required")
        recipients = body.get("recipients")
        if not isinstance(recipients, list) or not recipients:
            return _error(400, "VALIDATION_ERROR", "recipients required")
        catalog = state.branded if kind == "branded" else state.choice
        product = next((p for p in catalog if p["productId"] == body.get("productId")), None)
        if product is None:
            return _error(404, "PRODUCT_NOT_FOUND", "No such product")
        for r in recipients:
            amount = r.get("amount") if isinstance(r, dict) else None
            if not isinstance(r, dict) or "@" not in str(r.get("email", "")):
                return _error(400, "VALIDATION_ERROR", "recipients[].email required")
            if isinstance(amount, bool) or not isinstance(amount, int | Decimal):
                return _error(400, "VALIDATION_ERROR", "recipients[].amount must be a number")
            if "prices" in product and kind == "branded":
                allowed = Decimal(amount) in [Decimal(p) for p in product["prices"]]
            else:
                low, high = (
                    product["prices"]
                    if "prices" in product
                    else (product["minPrice"], product["maxPrice"])
                )
                allowed = Decimal(low) <= Decimal(amount) <= Decimal(high)
            if not allowed:
                return _error(400, "INVALID_AMOUNT", "Amount is not a valid price point")
        if body["productId"] in state.out_of_stock:
            return _error(409, "OUT_OF_STOCK", "Product temporarily unavailable")
        return None

    async def create(request: web.Request) -> web.StreamResponse:
        if (refused := await guard(request, "orders.write", creating=True)) is not None:
            return refused
        kind = request.match_info["kind"]
        body = state.requests[-1].body
        if (invalid := validate(kind, body, request.headers.get("X-Idempotency-Key"))) is not None:
            return invalid
        key = body["idempotencyKey"]
        fingerprint = _dumps({k: v for k, v in body.items() if k != "idempotencyKey"})
        known = state.keys.get(key)
        if known is not None and state.now() - known[2] <= state.replay_window:
            if known[0] != fingerprint:
                return _error(409, "DUPLICATE_IDEMPOTENCY_KEY", "Key used with another body")
            return _json(200, state.order_json(state.orders[known[1]]))
        product = next(
            p
            for p in (state.branded if kind == "branded" else state.choice)
            if p["productId"] == body["productId"]
        )
        rate = state.usd_rates[product.get("currency", "USD")]
        cost = sum((Decimal(r["amount"]) * rate for r in body["recipients"]), Decimal(0))
        cost = cost.quantize(Decimal("0.01"))
        if cost > state.balance_usd:
            return _error(
                state.insufficient_status,
                "INSUFFICIENT_BALANCE",
                "Account balance is insufficient for this order",
            )
        state.balance_usd -= cost
        order_id = f"OT{datetime.now():%Y%m%d}{len(state.orders) + 1:06d}"
        scheduled = body["sendTiming"]["type"] == "SCHEDULED"
        delay = state._delays.pop(0) if state._delays else state.completion_delay
        order = FakeOrder(
            order_id=order_id,
            card_type="BRANDED_CARD" if kind == "branded" else "CHOICE_CARD",
            product_id=body["productId"],
            idempotency_key=key,
            body=body,
            status="PENDING",
            cost_usd=cost,
            polls_left=10**9 if scheduled else state.polls_to_complete,
            created=state.now(),
            ready_at=state.now() + delay,
            unissued=frozenset(state.unissued),
        )
        _settle(order)
        state.orders[order_id] = order
        state.keys[key] = (fingerprint, order_id, state.now())
        if state._drop_after:
            state._drop_after -= 1
            return await drop_connection(request)
        failure = state._take_failure(creating=True, replay=False, after_processing=True)
        if failure is not None:
            return _injected(failure)
        return _json(201, state.order_json(order))

    def _settle(order: FakeOrder) -> None:
        ready = state.now() >= order.ready_at
        if order.status in ("PENDING", "IN_PROGRESS") and order.polls_left <= 0 and ready:
            order.status = "COMPLETE"
            order.reward_link = f"https://gift.giftronaut.test/r/{secrets.token_urlsafe(18)}"
        elif order.status == "PENDING" and order.polls_left < state.polls_to_complete:
            order.status = "IN_PROGRESS"

    async def get_order(request: web.Request) -> web.Response:
        if (refused := await guard(request, "orders.read")) is not None:
            return refused
        order = state.orders.get(request.match_info["order_id"])
        if order is None:
            return _error(404, "ORDER_NOT_FOUND", "No such order")
        order.polls_left -= 1
        _settle(order)
        return _json(200, state.order_json(order))

    async def cancel(request: web.Request) -> web.StreamResponse:
        if (refused := await guard(request, "orders.cancel")) is not None:
            return refused
        order = state.orders.get(request.match_info["order_id"])
        if order is None:
            return _error(404, "ORDER_NOT_FOUND", "No such order")
        timing = order.body["sendTiming"]
        cancelable = order.status == "PENDING" and timing["type"] == "SCHEDULED"
        if cancelable:
            zone = ZoneInfo(timing["timezone"])
            send_at = datetime.fromisoformat(timing["scheduledAt"]).replace(tzinfo=zone)
            cancelable = send_at - datetime.now(zone) >= timedelta(hours=1)
        if not cancelable:
            return _error(409, "ORDER_NOT_CANCELABLE", "Order cannot be canceled")
        order.status = "CANCELED"
        state.balance_usd += order.cost_usd
        if state._drop_after:
            state._drop_after -= 1
            return await drop_connection(request)
        return _json(200, {"orderId": order.order_id, "status": "CANCELED"})

    async def resend(request: web.Request) -> web.StreamResponse:
        if (refused := await guard(request, "orders.write")) is not None:
            return refused
        order = state.orders.get(request.match_info["order_id"])
        if order is None:
            return _error(404, "ORDER_NOT_FOUND", "No such order")
        body = state.requests[-1].body
        wanted = body.get("recipients") if isinstance(body, dict) else None
        if not isinstance(wanted, list) or not wanted:
            return _error(400, "VALIDATION_ERROR", "recipients required")
        requeued = 0
        for entry in wanted:
            for r in order.body["recipients"]:
                if r["email"] == entry.get("email"):
                    order.resends.append(dict(entry))
                    if entry.get("updatedEmail"):
                        r["email"] = entry["updatedEmail"]
                    requeued += 1
        if state._drop_after:
            state._drop_after -= 1
            return await drop_connection(request)
        return _json(200, {"orderId": order.order_id, "requeued": requeued})

    app = web.Application()
    app.router.add_post("/oauth2/token", token)
    app.router.add_get("/api/v1/catalog/{kind:branded|choice}-cards", catalog)
    app.router.add_post("/api/v1/orders/{kind:branded|choice}-cards", create)
    app.router.add_get("/api/v1/orders/{order_id}", get_order)
    app.router.add_delete("/api/v1/orders/{order_id}/cancel", cancel)
    app.router.add_post("/api/v1/orders/{order_id}/resend", resend)
    return app
