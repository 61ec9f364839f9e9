"""A fake Runa API (version 2024-02-05) that behaves as Runa's docs say, for tests.

Serve ``app(state)`` (a :class:`RunaState`) with :func:`tests.fakes.serve`; inspect ``state``
(orders created, requests seen) and flip its switches to inject failures.

Documented behaviour it reproduces: ``X-Api-Key`` auth (401 ``unauthorized``), ``X-Api-Version``
(410 ``version_removed`` for a removed version, 400 ``invalid_version``), the order body's
validation (422 with ``details``), ``X-Idempotency-Key`` replay of the *same* response for the
same key and body (including 4xx and, as idempotency.mdx says, Runa's own 5xx), 400
``idempotency_validation_error`` for another body, sync (200) and async (202) execution,
``GET /order/{id}`` polling, ``GET /order`` and ``GET /product`` with cursor pagination, the
error types of errors.mdx, 429 with its different body, and Svix-signed ``order.completion``
webhooks (:func:`sign_webhook`), posted to ``webhook_url`` as each async order completes. Its
rate limit (300 orders a minute) is off unless a test sets ``rate_limit``, scaled down to what a
test can wait for (or as it is, for the benchmarks).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes import drop_connection

API_KEY = "runa-test-key-0123456789"
CURRENT_VERSION = "2024-02-05"
REMOVED_VERSIONS = frozenset({"2023-01-16", "2023-07-27"})
LINK_PREFIX = "https://runa.fake.invalid/payout/"


def product(
    code: str,
    name: str,
    currency: str,
    *,
    fixed: tuple[str, ...] = (),
    minimum: str | None = None,
    maximum: str | None = None,
    discount: str = "0.05",
    orderable: bool = True,
    payout_type: str = "gift_card",
) -> dict[str, Any]:
    """A catalog entry in the 2024-02-05 ``Product`` shape."""
    denominations: dict[str, Any] = (
        {
            "type": "fixed",
            "available_list": list(fixed),
            "minimum_value": min(fixed, key=Decimal),
            "maximum_value": max(fixed, key=Decimal),
        }
        if fixed
        else {
            "type": "open",
            "available_list": None,
            "minimum_value": minimum,
            "maximum_value": maximum,
        }
    )
    entry: dict[str, Any] = {
        "code": code,
        "name": name,
        "currency": currency,
        "state": "LIVE" if orderable else "TEMPORARILY_DISABLED",
        "is_orderable": orderable,
        "payout_type": payout_type,
        "categories": ["food-and-drink"],
        "countries_redeemable_in": [code.rsplit("-", 1)[-1]],
        "customer_service": {"website_url": None},
        "discount_multiplier": discount,
        "availability": "realtime",
    }
    details = {"redeemable_at": "all", "denominations": denominations}
    if payout_type == "gift_card":
        entry["gift_card"] = details
    elif payout_type == "subscription":
        entry["subscription"] = {"subscription_plans": []}
    else:
        entry["payment"] = {"denominations": {"minimum_value": "1", "maximum_value": "100"}}
    return entry


DEFAULT_CATALOG = (
    product("COFFEE-GB", "Fake Coffee UK", "GBP", minimum="5.00", maximum="500.00"),
    product("BOOKS-US", "Fake Books US", "USD", fixed=("10.00", "25.00", "50.00")),
    product("TRAVEL-FR", "Fake Travel FR", "EUR", minimum="20.00", maximum="1000.00"),
    product("CLOSED-GB", "Fake Closed UK", "GBP", fixed=("10.00",), orderable=False),
    product("STREAM-US", "Fake Streaming US", "USD", payout_type="subscription"),
    product("PUSH-US", "Fake Push to Card", "USD", payout_type="payment"),
)


@dataclass
class SeenRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    # When the fake received it (this process's monotonic clock).
    at: float = field(default_factory=time.monotonic)


@dataclass
class FakeItem:
    """One payout link of an order."""

    id: str
    face_value: Decimal
    price: Decimal
    link: str
    payout_status: str = "ACTIVE"


@dataclass
class FakeOrder:
    id: str
    idempotency_key: str
    body: dict[str, Any]
    product_code: str
    currency: str
    payment_currency: str
    items: list[FakeItem]
    created_at: float
    status: str = "PROCESSING"
    failure_message: str | None = None

    @property
    def price(self) -> Decimal:
        return sum((item.price for item in self.items), Decimal(0))

    @property
    def face_value(self) -> Decimal:
        return sum((item.face_value for item in self.items), Decimal(0))

    @property
    def link(self) -> str:
        """The only item's link (most orders have one item)."""
        [item] = self.items
        return item.link

    @property
    def links(self) -> list[str]:
        return [item.link for item in self.items]


@dataclass
class _Cached:
    body: Any
    status: int
    payload: Any
    in_progress: bool = False


@dataclass
class _Failure:
    status: int
    error_type: str | None  # None: not a Runa body (a proxy's HTML page)
    after_processing: bool = False


@dataclass
class RunaState:
    """What the fake holds and saw, and the switches tests flip."""

    api_key: str = API_KEY
    catalog: list[dict[str, Any]] = field(default_factory=lambda: list(DEFAULT_CATALOG))
    # The fake's page size for GET /product (smaller than Runa's, to exercise pagination).
    catalog_page_size: int = 2
    balances: dict[str, Decimal] = field(
        default_factory=lambda: {c: Decimal(10_000) for c in ("GBP", "USD", "EUR")}
    )
    # Async orders complete this many seconds after creation (None: only by ``complete``).
    completion_delay: float | None = 0.05
    # idempotency.mdx: the cache replays every response, 5xx included. handling-errors.mdx
    # implies the opposite; flip this to model that reading.
    cache_server_errors: bool = True
    webhook_secret: str = field(
        default_factory=lambda: "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    )
    orders: dict[str, FakeOrder] = field(default_factory=dict)
    requests: list[SeenRequest] = field(default_factory=list)
    _cache: dict[str, _Cached] = field(default_factory=dict)
    _failures: deque[_Failure] = field(default_factory=deque)
    _drops: int = 0
    _rate_limits: deque[str | None] = field(default_factory=deque)
    _in_progress: deque[int] = field(default_factory=deque)
    _async_failures: deque[str] = field(default_factory=deque)
    _errors: deque[tuple[int, dict[str, Any]]] = field(default_factory=deque)
    _counter: int = 0
    # Runa's rate limit, scaled down: ``(requests, seconds)``, at most that many requests in
    # any span of that many seconds; each one more is answered 429 (``Retry-After: 1``) and
    # counted in ``rate_limited``. None: no limit.
    rate_limit: tuple[int, float] | None = None
    # Whether ``rate_limit`` counts only order placements (``POST /order``), as "300 orders a
    # minute" reads, or every request.
    rate_limit_orders_only: bool = False
    rate_limited: int = 0
    # Where Runa's webhook portal posts ``order.completion`` (signed with ``webhook_secret``)
    # when an async order completes after ``completion_delay``; None: no endpoint subscribed.
    webhook_url: str | None = None
    webhooks_sent: int = 0
    _webhook_tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _answered_at: deque[float] = field(default_factory=deque)

    # -- switches --------------------------------------------------------------------------

    def fail_next_with(
        self,
        status: int,
        error_type: str | None = "internal_server_error",
        *,
        after_processing: bool = False,
    ) -> None:
        """The next POST /order answers ``status``: a Runa JSON error of ``error_type`` (cached
        for its key when ``cache_server_errors``), or a proxy's HTML page when ``None`` (never
        cached). ``after_processing``: the order is placed first."""
        self._failures.append(_Failure(status, error_type, after_processing))

    def drop_next_after_processing(self) -> None:
        """The next POST /order places the order, then the connection drops unanswered."""
        self._drops += 1

    def rate_limit_next(self, retry_after: str | None = None) -> None:
        """The next request gets 429 ``{"error": "rate exceeded"}`` (with ``Retry-After``)."""
        self._rate_limits.append(retry_after)

    def in_progress_next(self, status: int = 400) -> None:
        """The next POST /order answers ``idempotency_in_progress`` (400 per errors.mdx; 102
        per idempotency.mdx, which HTTP clients take as an interim answer)."""
        self._in_progress.append(status)

    def fail_next_order_async(self, message: str = "The product could not be issued.") -> None:
        """The next order is accepted and then fails while processing."""
        self._async_failures.append(message)

    def error_next(self, status: int, body: dict[str, Any]) -> None:
        """The next request (any endpoint, after auth) answers ``status`` with ``body``."""
        self._errors.append((status, body))

    def complete(self, order_id: str) -> None:
        self.orders[order_id].status = "COMPLETED"

    def fail(self, order_id: str, message: str) -> None:
        order = self.orders[order_id]
        order.status, order.failure_message = "FAILED", message

    # -- what tests read -------------------------------------------------------------------

    @property
    def order_posts(self) -> list[SeenRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/v2/order"]

    def only_order(self) -> FakeOrder:
        assert len(self.orders) == 1, f"expected one order, found {len(self.orders)}"
        return next(iter(self.orders.values()))

    def completion_webhook(self, order_id: str) -> bytes:
        """The ``order.completion`` body Runa sends for ``order_id`` in its current state."""
        order = self.orders[order_id]
        if order.status == "FAILED":
            return json.dumps({"id": order.id, "status": "FAILED"}).encode()
        return json.dumps(_basic_details(order)).encode()

    # -- internals -------------------------------------------------------------------------

    def _over_the_limit(self) -> bool:
        """Whether a request arriving now is one more than ``rate_limit`` allows (the requests
        it refuses do not count against the limit)."""
        if self.rate_limit is None:
            return False
        requests, seconds = self.rate_limit
        now = time.monotonic()
        while self._answered_at and now - self._answered_at[0] >= seconds:
            self._answered_at.popleft()
        if len(self._answered_at) >= requests:
            self.rate_limited += 1
            return True
        self._answered_at.append(now)
        return False

    def _settle(self, order: FakeOrder) -> None:
        if order.status != "PROCESSING" or self.completion_delay is None:
            return
        if time.monotonic() - order.created_at >= self.completion_delay:
            order.status = "FAILED" if order.failure_message else "COMPLETED"

    def _new_id(self) -> str:
        self._counter += 1
        return f"O-{self._counter:06d}{secrets.token_hex(4).upper()}"


def sign_webhook(
    secret: str, body: bytes, *, msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    """Standard Webhooks / Svix headers for ``body``, as Runa's webhook portal sends them."""
    msg_id = msg_id or f"msg_{secrets.token_hex(12)}"
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
        "content-type": "application/json",
    }


def _error(status: int, error_type: str, message: str, **extra: Any) -> web.Response:
    return web.json_response(
        {"type": error_type, "message": message, "help": "See the Runa docs.", **extra},
        status=status,
    )


def _basic_details(order: FakeOrder) -> dict[str, Any]:
    return {
        "id": order.id,
        "status": order.status,
        "created_at": "2026-01-01T00:00:00Z",
        "completed_at": "2026-01-01T00:00:01Z",
        "description": order.body.get("description"),
        "payment_method": {"type": "ACCOUNT_BALANCE", "currency": order.payment_currency},
        "currency": order.payment_currency,
        "total_price": str(order.price),
        "total_discount": str(order.face_value - order.price),
    }


def _full_details(order: FakeOrder) -> dict[str, Any]:
    if order.status != "COMPLETED":
        message = order.failure_message or "The order is being processed."
        return {"id": order.id, "status": order.status, "message": message}
    return {
        **_basic_details(order),
        "items": [
            {
                "id": item.id,
                "distribution_method": sent["distribution_method"],
                "products": sent["products"],
                "face_value": str(item.face_value),
                "price": str(item.price),
                "currency": order.currency,
                "payout": {
                    "status": item.payout_status,
                    "status_updated_at": "2026-01-01T00:00:01Z",
                    "url": item.link,
                    "expiry_date": None,
                },
            }
            for item, sent in zip(order.items, order.body["items"], strict=True)
        ],
        "transaction_detail": {order.currency: {"value": str(order.price), "fx": None}},
        "metadata": order.body.get("metadata"),
    }


def _validation_payload(details: list[tuple[list[str], str]]) -> dict[str, Any]:
    return {
        "type": "validation_error",
        "message": "There were one or more problems processing your request, see details.",
        "details": [{"type": "value_error", "message": m, "location": loc} for loc, m in details],
    }


def _validation(details: list[tuple[list[str], str]]) -> web.Response:
    return web.json_response(_validation_payload(details), status=422)


def _page(items: list[Any], after: str | None, limit: int, key: str) -> tuple[list[Any], Any]:
    start = 0
    if after is not None:
        ids = [i[key] if isinstance(i, dict) else i.id for i in items]
        start = ids.index(after) + 1 if after in ids else len(items)
    chunk = items[start : start + limit]
    last = chunk[-1] if chunk else None
    next_cursor = None
    if last is not None and start + limit < len(items):
        next_cursor = last[key] if isinstance(last, dict) else last.id
    return chunk, {"cursors": {"after": next_cursor, "before": None}, "page": {"limit": limit}}


def app(state: RunaState) -> web.Application:
    """The fake Runa API under ``/v2``, over ``state``."""

    @web.middleware
    async def gatekeeper(request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        state.requests.append(
            SeenRequest(
                request.method, request.path, dict(request.query), dict(request.headers), body
            )
        )
        if request.headers.get("X-Api-Key") != state.api_key:
            return _error(401, "unauthorized", "Missing or invalid 'X-Api-Key' header.")
        version = request.headers.get("X-Api-Version", CURRENT_VERSION)
        if version in REMOVED_VERSIONS:
            return _error(410, "version_removed", "API version is no longer supported")
        if version != CURRENT_VERSION:
            return _error(400, "invalid_version", "Invalid API version")
        counted = not state.rate_limit_orders_only or (
            request.method == "POST" and request.path == "/v2/order"
        )
        if counted and state._over_the_limit():
            return web.json_response(
                {"error": "rate exceeded"}, status=429, headers={"Retry-After": "1"}
            )
        if state._rate_limits:
            retry_after = state._rate_limits.popleft()
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            return web.json_response({"error": "rate exceeded"}, status=429, headers=headers)
        if state._errors:
            status, payload = state._errors.popleft()
            return web.json_response(payload, status=status)
        response: web.StreamResponse = await handler(request)
        return response

    async def list_products(request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", "500"))
        except ValueError:
            return _error(400, "pagination_error", "There was an issue with the pagination")
        if not 1 <= limit <= 500:
            return _error(400, "pagination_error", "There was an issue with the pagination")
        items = state.catalog
        if request.query.get("is_orderable") == "true":
            items = [p for p in items if p["is_orderable"]]
        chunk, pagination = _page(
            items, request.query.get("after"), min(limit, state.catalog_page_size), "code"
        )
        return web.json_response({"catalog": chunk, "pagination": pagination})

    async def get_order(request: web.Request) -> web.Response:
        order = state.orders.get(request.match_info["id"])
        if order is None:
            return _error(404, "not_found", "The requested resource does not exist")
        state._settle(order)
        return web.json_response(_full_details(order))

    async def list_orders(request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "100"))
        newest_first = list(reversed(state.orders.values()))
        for order in newest_first:
            state._settle(order)
        chunk, pagination = _page(newest_first, request.query.get("after"), limit, "id")
        items = [
            _basic_details(o)
            if o.status == "COMPLETED"
            else {"id": o.id, "status": o.status, "message": o.failure_message or "Processing"}
            for o in chunk
        ]
        return web.json_response({"items": items, "pagination": pagination})

    async def create_order(request: web.Request) -> web.StreamResponse:
        if state._in_progress:
            return _error(
                state._in_progress.popleft(),
                "idempotency_in_progress",
                "We are already processing an order for this idempotency key",
            )
        failure = state._failures.popleft() if state._failures else None
        if failure is not None and failure.error_type is None:
            return web.Response(
                status=failure.status, text="<html>Bad gateway</html>", content_type="text/html"
            )
        key = request.headers.get("X-Idempotency-Key", "")
        if not key:
            return _validation([(["header", "X-Idempotency-Key"], "field required")])
        try:
            body = json.loads(await request.read(), parse_float=Decimal)
        except ValueError:
            return _error(400, "bad_request", "There is a problem with your JSON format.")
        cached = state._cache.get(key)
        if cached is not None:
            if cached.body != body:
                return _error(
                    400,
                    "idempotency_validation_error",
                    "Request payload does not match previous payload for this idempotency key.",
                )
            return web.json_response(cached.payload, status=cached.status)
        status, payload = _place(request, key, body, failure)
        if status < 500 or (failure is not None and state.cache_server_errors):
            state._cache[key] = _Cached(body, status, payload)
        if state._drops and status < 300:
            state._drops -= 1
            return await drop_connection(request)
        return web.json_response(payload, status=status)

    def _place(
        request: web.Request, key: str, body: Any, failure: _Failure | None
    ) -> tuple[int, Any]:
        """Validate and place the order: the (status, JSON) Runa answers and caches."""
        if failure is not None and not failure.after_processing:
            return failure.status, {"type": failure.error_type, "message": "An error occurred"}
        mode = request.headers.get("X-Execution-Mode", "async")
        if mode not in ("async", "sync"):
            return 400, {"type": "invalid_execution_mode", "message": "Invalid execution mode."}
        problems = _problems(body)
        if problems:
            return 422, _validation_payload(problems)
        payment, faces = body["payment_method"], []
        codes = {item["products"]["value"] for item in body["items"]}
        entry = None
        for item in body["items"]:
            code, face = item["products"]["value"], Decimal(str(item["face_value"]))
            entry = next((p for p in state.catalog if p["code"] == code), None)
            refusal = _product_refusal(entry, face)
            if refusal:
                return 400, {
                    "type": "product_validation_error",
                    "message": f"Not allowed to order products: {refusal}",
                }
            faces.append(face)
        assert entry is not None
        currencies = {p["currency"] for p in state.catalog if p["code"] in codes}
        if currencies != {payment["currency"]}:
            return 400, {
                "type": "currency_mismatch",
                "message": f"The currency requested in the payment_method, "
                f"'{payment['currency']}', does not match the currency of the selected "
                f"products, '{entry['currency']}'.",
            }
        discount = 1 - Decimal(entry["discount_multiplier"])
        prices = [(face * discount).quantize(Decimal("0.01")) for face in faces]
        if state.balances.get(payment["currency"], Decimal(0)) < sum(prices):
            return 400, {
                "type": "insufficient_funds",
                "message": f"Insufficient funds in {payment['currency']} balance to create order.",
            }
        state.balances[payment["currency"]] -= sum(prices)
        order_id = state._new_id()
        order = FakeOrder(
            id=order_id,
            idempotency_key=key,
            body=body,
            product_code=next(iter(codes)),
            currency=entry["currency"],
            payment_currency=payment["currency"],
            items=[
                FakeItem(
                    id=f"E-{order_id[2:]}{index:03d}",
                    face_value=face,
                    price=price,
                    link=LINK_PREFIX + secrets.token_urlsafe(18),
                )
                for index, (face, price) in enumerate(zip(faces, prices, strict=True))
            ],
            created_at=time.monotonic(),
        )
        if state._async_failures:
            order.failure_message = state._async_failures.popleft()
        state.orders[order.id] = order
        if failure is not None:  # placed, then Runa failed to answer
            return failure.status, {"type": failure.error_type, "message": "An error occurred"}
        if mode == "sync":
            order.status = "FAILED" if order.failure_message else "COMPLETED"
            if order.status == "FAILED":
                return 200, {"id": order.id, "status": "FAILED", "message": order.failure_message}
            return 200, _full_details(order)
        if state.webhook_url is not None and state.completion_delay is not None:
            task = asyncio.create_task(announce_completion(order))
            state._webhook_tasks.add(task)
            task.add_done_callback(state._webhook_tasks.discard)
        return 202, {"id": order.id, "status": "PROCESSING"}

    async def announce_completion(order: FakeOrder) -> None:
        """Runa's portal: ``order.completion`` to the subscribed endpoint once the order is
        done (one attempt: the benchmarks and tests that use it want the first delivery)."""
        assert state.webhook_url is not None and state.completion_delay is not None
        await asyncio.sleep(state.completion_delay)
        state._settle(order)
        body = state.completion_webhook(order.id)
        headers = sign_webhook(state.webhook_secret, body) | {"Content-Type": "application/json"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(state.webhook_url, data=body, headers=headers) as answer,
        ):
            await answer.read()
        state.webhooks_sent += 1

    app = web.Application(middlewares=[gatekeeper])
    app.router.add_get("/v2/product", list_products)
    app.router.add_post("/v2/order", create_order)
    app.router.add_get("/v2/order", list_orders)
    app.router.add_get("/v2/order/{id}", get_order)
    return app


def _problems(body: Any) -> list[tuple[list[str], str]]:
    """The 422 ``details`` for a create-order body, per ``NewOrderDetails``."""
    if not isinstance(body, dict):
        return [(["body"], "value is not a valid dict")]
    problems: list[tuple[list[str], str]] = []
    payment = body.get("payment_method")
    if not isinstance(payment, dict) or payment.get("type") != "ACCOUNT_BALANCE":
        problems.append((["payment_method", "type"], "permitted: ACCOUNT_BALANCE"))
    elif not isinstance(payment.get("currency"), str) or len(payment["currency"]) != 3:
        problems.append((["payment_method", "currency"], "field required"))
    items = body.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= 200:
        return [*problems, (["items"], "ensure this value has 1 to 200 items")]
    for index, item in enumerate(items):
        where = ["items", str(index)]
        face = item.get("face_value") if isinstance(item, dict) else None
        if isinstance(face, bool) or not isinstance(face, int | Decimal):
            problems.append(([*where, "face_value"], "value is not a valid number"))
        elif face < Decimal("0.01"):
            problems.append(([*where, "face_value"], "ensure this value is >= 0.01"))
        distribution = item.get("distribution_method") if isinstance(item, dict) else None
        if not isinstance(distribution, dict) or distribution.get("type") not in (
            "PAYOUT_LINK",
            "EMAIL",
        ):
            problems.append(([*where, "distribution_method"], "invalid distribution method"))
        products = item.get("products") if isinstance(item, dict) else None
        if (
            not isinstance(products, dict)
            or products.get("type") != "SINGLE"
            or not products.get("value")
        ):
            problems.append(([*where, "products"], "invalid product selection"))
    if body.get("description") is not None and len(str(body["description"])) > 128:
        problems.append((["description"], "ensure this value has at most 128 characters"))
    return problems


def _product_refusal(entry: dict[str, Any] | None, face: Decimal) -> str | None:
    if entry is None:
        return "unknown product"
    if not entry["is_orderable"] or entry["payout_type"] != "gift_card":
        return f"{entry['code']} is not orderable"
    denominations = entry["gift_card"]["denominations"]
    try:
        if denominations["type"] == "fixed":
            allowed = face in {Decimal(v) for v in denominations["available_list"]}
        else:
            allowed = (
                Decimal(denominations["minimum_value"])
                <= face
                <= Decimal(denominations["maximum_value"])
            )
    except (InvalidOperation, TypeError):
        allowed = False
    return None if allowed else f"face value {face} is not allowed for {entry['code']}"
