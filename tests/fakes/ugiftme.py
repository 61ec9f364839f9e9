"""A fake UGiftMe business API, behaving as /work/shared/provider-docs/ugiftme describes it.

* ``X-API-Key`` on every call: missing → 401 ``{"error": "Missing API key"}``, wrong → 401
  ``{"error": "Invalid API key", "reason": ...}``.
* ``POST /api/v1/business/orders``: validation → 400 ``{error, message}``; unknown product →
  404; wallet short → 402 ``{error, required, available, currency}``; ``Idempotency-Key``
  replay (same payload) → the same answer again, another payload → 400.
  Synchronous mode answers 201 with the order; async mode (``async_mode=True``) answers 202
  ``{orderRequestId, status: "queued"}`` and the request settles after ``async_steps`` polls of
  ``GET /api/v1/business/orders/order-requests/{id}`` (``processing`` before that).
* ``GET /api/v1/business/orders/{id}``: the order (with its voucher) or 404.
* ``GET /api/v1/business/products``: the catalog in the shape the adapter assumes (the real
  endpoint is undocumented), paginated with ``page``/``limit``/``totalPages``.

Switches for tests: :meth:`UGiftMeState.fail_next_with` (``replay_only``: only a create that
replays a known ``Idempotency-Key``), :meth:`drop_next_after_processing`,
:meth:`drop_next_before_processing`, :meth:`rate_limit_next`, :meth:`fail_next_async`,
``balance``, ``async_mode``, ``poll_result`` (what a succeeded request's ``result`` holds),
``completion_delay`` / :meth:`delay_next_completion` (async mode: a queued request stays
``processing`` for that many seconds, however often it is polled).

Inspection: ``accepted`` (every create that placed an order or queued an order request, with
its key), ``created_keys`` and :meth:`UGiftMeState.accepted_for_request` (by the bot's
``rewardbot-<id>-…`` key).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from aiohttp import web

from tests.fakes import drop_connection, request_id_of_key

API = "/api/v1/business"
Route = Literal["create", "poll", "order", "products"]

DEFAULT_PRODUCTS: list[dict[str, Any]] = [
    {
        "productCode": "AMAZON_UK_STD",
        "name": "Amazon.co.uk Gift Card",
        "merchant": "Amazon UK",
        "currency": "GBP",
        "minValue": 5,
        "maxValue": 500,
        "isActive": True,
    },
    {
        "productCode": "JL_UK_STD",
        "merchant": {"name": "John Lewis"},
        "currency": "GBP",
        "denominations": [10, 25, 50],
        "isActive": True,
    },
    {
        "productCode": "TESCO-GBP-50",
        "name": "Tesco £50",
        "merchant": "Tesco",
        "currency": "GBP",
        "values": [50],
    },
]


@dataclass
class Seen:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body, parse_float=Decimal)


@dataclass
class _Fault:
    route: Route
    kind: Literal["status", "drop", "rate_limit"]
    after_processing: bool = False
    status: int = 503
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Only for a create that replays a known Idempotency-Key.
    replay_only: bool = False


@dataclass
class Accepted:
    """A create that placed an order (``kind="order"``) or queued an order request
    (``kind="request"``), under ``key`` (its ``Idempotency-Key``, if it had one)."""

    key: str | None
    kind: Literal["order", "request"]
    ident: str


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def _dumps(data: Any) -> str:
    def number(value: Any) -> Any:
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        raise TypeError(type(value))

    return json.dumps(data, default=number)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=_dumps)


class UGiftMeState:
    """The fake's state; tests flip its switches and inspect what it recorded."""

    def __init__(
        self,
        *,
        api_key: str = "3f6c1e2a-9b7d-4c55-8e21-ugiftme-test-key",
        balance: Decimal = Decimal(1000),
        async_mode: bool = False,
        products: list[dict[str, Any]] | None = None,
        async_steps: int = 2,
    ) -> None:
        self.api_key = api_key
        self.balance = balance
        self.held = Decimal(0)
        self.async_mode = async_mode
        self.async_steps = async_steps
        self.products = list(DEFAULT_PRODUCTS if products is None else products)
        # What a succeeded order request's ``result`` holds: the full order (as documented),
        # only ``{"orderId"}`` (the webhook shape), or something unreadable.
        self.poll_result: Literal["order", "order_id", "garbage"] = "order"
        # The price the wallet is debited: face value less this discount.
        self.discount = Decimal("0.01")
        self.orders: dict[str, dict[str, Any]] = {}
        self.order_requests: dict[str, dict[str, Any]] = {}
        self.idempotency: dict[str, tuple[Any, str, str]] = {}
        self.accepted: list[Accepted] = []
        self.seen: list[Seen] = []
        # Async mode: a queued request is still processing this many seconds after the create
        # (delay_next_completion: for the next one only), however often it is polled.
        self.completion_delay = 0.0
        self._faults: list[_Fault] = []
        self._async_failures: list[str] = []
        self._delays: list[float] = []

    # -- switches -------------------------------------------------------------------------------

    def fail_next_with(
        self,
        status: int,
        body: dict[str, Any] | None = None,
        *,
        route: Route = "create",
        after_processing: bool = False,
        times: int = 1,
        replay_only: bool = False,
    ) -> None:
        """Answer the next ``times`` calls of ``route`` with ``status`` (before doing anything,
        or after the order was created with ``after_processing``). ``replay_only``: only a
        create whose ``Idempotency-Key`` the fake already knows (a replay) gets it."""
        if replay_only and route != "create":
            raise ValueError("replay_only is for route='create'")
        for _ in range(times):
            self._faults.append(
                _Fault(
                    route,
                    "status",
                    after_processing,
                    status,
                    body or {"error": "Boom"},
                    replay_only=replay_only,
                )
            )

    def drop_next_after_processing(self, route: Route = "create") -> None:
        """Do the work of the next ``route`` call, then drop the connection unanswered."""
        self._faults.append(_Fault(route, "drop", after_processing=True))

    def drop_next_before_processing(self, route: Route = "create") -> None:
        """Drop the next ``route`` call's connection without doing anything."""
        self._faults.append(_Fault(route, "drop"))

    def rate_limit_next(
        self,
        retry_after: float | str | None,
        *,
        route: Route = "create",
        header: str = "Retry-After",
    ) -> None:
        """Answer the next ``route`` call with 429, asking to wait ``retry_after``."""
        headers = {} if retry_after is None else {header: str(retry_after)}
        body = {"error": "Too many requests"}
        self._faults.append(_Fault(route, "rate_limit", status=429, body=body, headers=headers))

    def fail_next_async(self, error: str) -> None:
        """The next queued order request fails while processing, with this ``error``."""
        self._async_failures.append(error)

    def delay_next_completion(self, seconds: float) -> None:
        """Async mode: the next queued order request stays ``processing`` for ``seconds``
        (instead of ``completion_delay``), however often it is polled."""
        self._delays.append(seconds)

    # -- what happened --------------------------------------------------------------------------

    @property
    def order_count(self) -> int:
        return len(self.orders)

    def calls(self, method: str, path_prefix: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path.startswith(path_prefix)]

    @property
    def create_calls(self) -> list[Seen]:
        return self.calls("POST", f"{API}/orders")

    @property
    def created_keys(self) -> list[str | None]:
        """The key of every accepted create whose card exists or may still be issued (an order
        request that failed left out): two entries for one reward request are two cards."""
        return [a.key for a in self.accepted if not self._failed(a)]

    def accepted_for_request(self, request_id: int) -> list[Accepted]:
        """The accepted creates (failed order requests too) under the bot's keys for
        ``request_id``."""
        return [a for a in self.accepted if request_id_of_key(a.key) == request_id]

    def _failed(self, accepted: Accepted) -> bool:
        return (
            accepted.kind == "request" and self.order_requests[accepted.ident]["status"] == "failed"
        )

    # -- the server's handlers (see :func:`app`) ---------------------------------------------

    @web.middleware
    async def _record_and_authenticate(self, request: web.Request, handler: Any) -> Any:
        self.seen.append(
            Seen(
                request.method,
                request.path,
                dict(request.headers),
                await request.read(),
                time.monotonic(),
            )
        )
        key = request.headers.get("X-API-Key")
        if not key:
            return _json({"error": "Missing API key"}, 401)
        if key != self.api_key:
            return _json({"error": "Invalid API key", "reason": "Key not recognised"}, 401)
        return await handler(request)

    def _fault(
        self, route: Route, *, after_processing: bool, replay: bool = False
    ) -> _Fault | None:
        for fault in self._faults:
            if (
                fault.route == route
                and fault.after_processing == after_processing
                and (replay or not fault.replay_only)
            ):
                self._faults.remove(fault)
                return fault
        return None

    async def _injected(
        self, request: web.Request, route: Route, *, after_processing: bool, replay: bool = False
    ) -> web.StreamResponse | None:
        fault = self._fault(route, after_processing=after_processing, replay=replay)
        if fault is None:
            return None
        if fault.kind == "drop":
            return await drop_connection(request)
        return _json(fault.body, fault.status, fault.headers)

    async def _products(self, request: web.Request) -> web.StreamResponse:
        injected = await self._injected(request, "products", after_processing=False)
        if injected is not None:
            return injected
        page = max(int(request.query.get("page", "1")), 1)
        limit = max(int(request.query.get("limit", "10")), 1)
        pages = max((len(self.products) + limit - 1) // limit, 1)
        chunk = self.products[(page - 1) * limit : page * limit]
        return _json(
            {"products": chunk, "page": page, "totalPages": pages, "total": len(self.products)}
        )

    async def _create(self, request: web.Request) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        replay = bool(key) and key in self.idempotency
        injected = await self._injected(request, "create", after_processing=False, replay=replay)
        if injected is not None:
            return injected
        try:
            payload = json.loads(await request.read(), parse_float=Decimal)
        except ValueError:
            return _json({"error": "Invalid JSON", "message": "Body must be JSON"}, 400)
        if not isinstance(payload, dict):
            return _json({"error": "Validation failed", "message": "Body must be an object"}, 400)
        problem = self._schema_problem(payload)
        if problem:
            return _json({"error": "Validation failed", "message": problem}, 400)
        if key and key in self.idempotency:
            stored, kind, ident = self.idempotency[key]
            if stored != payload:
                return _json(
                    {
                        "error": "Idempotency key reuse",
                        "message": "Idempotency-Key was already used with a different payload",
                    },
                    400,
                )
            answer = self._replay(kind, ident)
        else:
            refusal = self._business_problem(payload)
            if refusal is not None:
                return refusal
            answer, kind, ident = self._accept(payload)
            self.accepted.append(Accepted(key, "order" if kind == "order" else "request", ident))
            if key:
                self.idempotency[key] = (payload, kind, ident)
        after = await self._injected(request, "create", after_processing=True, replay=replay)
        return after if after is not None else answer

    def _schema_problem(self, payload: dict[str, Any]) -> str | None:
        for name in ("productCode", "merchant", "currency"):
            if not isinstance(payload.get(name), str) or not payload[name]:
                return f"{name} is required"
        value = payload.get("valuePurchased")
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            return "valuePurchased must be a number"
        email = payload.get("recipientEmail")
        if email is not None and (not isinstance(email, str) or "@" not in email):
            return "recipientEmail must be a valid email"
        return None

    def _business_problem(self, payload: dict[str, Any]) -> web.Response | None:
        code = payload["productCode"]
        product = next((p for p in self.products if p["productCode"] == code), None)
        if product is None:
            return _json({"error": "Product not found", "message": f"No product {code}"}, 404)
        merchant = product["merchant"]
        merchant = merchant["name"] if isinstance(merchant, dict) else merchant
        value = Decimal(payload["valuePurchased"])

        def invalid(message: str) -> web.Response:
            return _json({"error": "Validation failed", "message": message}, 400)

        if payload["merchant"] != merchant:
            return invalid(f"merchant does not match product {code}")
        if payload["currency"] != product["currency"]:
            return invalid(f"currency must be {product['currency']} for {code}")
        fixed = product.get("denominations") or product.get("values")
        if fixed and value not in {Decimal(v) for v in fixed}:
            allowed = ", ".join(str(v) for v in fixed)
            return invalid(f"valuePurchased must be one of {allowed} for {code}")
        if not fixed and not Decimal(product["minValue"]) <= value <= Decimal(product["maxValue"]):
            return invalid(
                f"valuePurchased must be between {product['minValue']} and {product['maxValue']}"
            )
        price = self._price(value)
        if price > self.balance - self.held:
            return _json(
                {
                    "error": "Insufficient funds",
                    "required": price,
                    "available": self.balance - self.held,
                    "currency": payload["currency"],
                },
                402,
            )
        return None

    def _price(self, value: Decimal) -> Decimal:
        return (value * (1 - self.discount)).quantize(Decimal("0.01"))

    def _accept(self, payload: dict[str, Any]) -> tuple[web.Response, str, str]:
        """Create the order (sync) or queue it (async): the answer, and what it created."""
        if not self.async_mode:
            order = self._issue(payload)
            return _json(self._order_json(order, sync_create=True), 201), "order", order["_id"]
        request_id = secrets.token_hex(12)
        self.held += self._price(Decimal(payload["valuePurchased"]))
        self.order_requests[request_id] = {
            "orderRequestId": request_id,
            "status": "queued",
            "type": "single",
            "payload": payload,
            "polls": 0,
            "failure": self._async_failures.pop(0) if self._async_failures else None,
            "orderId": None,
            "createdAt": _now(),
            "readyAt": time.monotonic()
            + (self._delays.pop(0) if self._delays else self.completion_delay),
        }
        answer = _json({"orderRequestId": request_id, "status": "queued"}, 202)
        return answer, "request", request_id

    def _replay(self, kind: str, ident: str) -> web.Response:
        if kind == "order":
            return _json(self._order_json(self.orders[ident], sync_create=True), 201)
        queued = self.order_requests[ident]
        return _json({"orderRequestId": ident, "status": queued["status"]}, 202)

    def _issue(self, payload: dict[str, Any]) -> dict[str, Any]:
        value = Decimal(payload["valuePurchased"])
        self.balance -= self._price(value)
        order_id = secrets.token_hex(12)
        order = {
            "_id": order_id,
            "productCode": payload["productCode"],
            "merchant": {
                "name": payload["merchant"],
                "distributionMethod": "EMAIL",
                "voucherCode": "-".join(secrets.token_hex(2).upper() for _ in range(4)),
                "redemptionUrl": f"https://redeem.ugift.invalid/r/{secrets.token_urlsafe(12)}",
            },
            "currency": payload["currency"],
            "valuePurchased": value,
            "status": "active",
            "isPaid": True,
            "isActive": True,
            "usageLimit": 1,
            "expiryDate": "2055-12-31T23:59:59.000Z",
            "giftOrder": {
                "message": payload.get("giftMessage"),
                "recipientEmail": payload.get("recipientEmail"),
                "recipientName": payload.get("recipientName"),
            },
            "transactionId": f"txn_{secrets.token_hex(8)}",
            "createdAt": _now(),
            "updatedAt": _now(),
            "imageUrl": "https://cdn.ugift.invalid/products/card.png",
        }
        self.orders[order_id] = order
        return order

    @staticmethod
    def _order_json(order: dict[str, Any], *, sync_create: bool = False) -> dict[str, Any]:
        if not sync_create:
            return order
        # "synchronous 201 creates may include populated product instead of imageUrl"
        shown = {k: v for k, v in order.items() if k != "imageUrl"}
        shown["product"] = {
            "imageUrl": order["imageUrl"],
            "merchant": order["merchant"]["name"],
            "productCode": order["productCode"],
        }
        return shown

    async def _poll(self, request: web.Request) -> web.StreamResponse:
        injected = await self._injected(request, "poll", after_processing=False)
        if injected is not None:
            return injected
        queued = self.order_requests.get(request.match_info["id"])
        if queued is None:
            return _json({"error": "Order request not found"}, 404)
        if queued["status"] in ("queued", "processing"):
            queued["polls"] += 1
            if queued["polls"] < self.async_steps or time.monotonic() < queued["readyAt"]:
                queued["status"] = "processing"
            else:
                self._settle(queued)
        body: dict[str, Any] = {
            "orderRequestId": queued["orderRequestId"],
            "status": queued["status"],
            "type": queued["type"],
            "createdAt": queued["createdAt"],
            "updatedAt": _now(),
        }
        if queued["status"] == "succeeded":
            order = self.orders[queued["orderId"]]
            body["result"] = {
                "order": order,
                "order_id": {"orderId": order["_id"]},
                "garbage": ["not", "an", "order"],
            }[self.poll_result]
        if queued["status"] == "failed":
            body["error"] = queued["failure"]
        after = await self._injected(request, "poll", after_processing=True)
        return after if after is not None else _json(body)

    def _settle(self, queued: dict[str, Any]) -> None:
        payload = queued["payload"]
        self.held -= self._price(Decimal(payload["valuePurchased"]))
        if queued["failure"]:
            queued["status"] = "failed"
            return
        queued["orderId"] = self._issue(payload)["_id"]
        queued["status"] = "succeeded"

    async def _order(self, request: web.Request) -> web.StreamResponse:
        injected = await self._injected(request, "order", after_processing=False)
        if injected is not None:
            return injected
        order = self.orders.get(request.match_info["id"])
        if order is None:
            return _json({"error": "Order not found"}, 404)
        return _json(order)


def app(state: UGiftMeState) -> web.Application:
    """The fake uGift.me business API, over ``state`` (whose methods handle the requests)."""
    server = web.Application(middlewares=[state._record_and_authenticate])
    server.router.add_get(f"{API}/products", state._products)
    server.router.add_post(f"{API}/orders", state._create)
    server.router.add_get(f"{API}/orders/order-requests/{{id}}", state._poll)
    server.router.add_get(f"{API}/orders/{{id}}", state._order)
    return server
