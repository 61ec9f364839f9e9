"""A fake CardPlusPay API, as its integration guide describes it (see providers/cardpluspay.py).

Envelope ``{"success", "message", "data"}`` everywhere; ``X-API-Key`` auth; ``GET /catalog``,
``POST /orders/check``, ``POST /orders`` (no idempotency: every POST that gets through buys),
``GET /orders/{id}``, ``GET /orders`` (newest first, ``per_page`` + ``page``). Tests inspect
:class:`CardPlusPayState` (``orders``, ``requests``) and flip its switches to inject failures.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.fakes import drop_connection

API_KEY = "cpp_live_test_9f8e7d6c5b4a"


@dataclass
class FakeItem:
    item_code: str
    product_name: str
    value: Decimal
    price: Decimal
    currency: str = "USD"
    delivery_type: str = "DIGITAL"
    stock: int = 1000


@dataclass
class FakeOrder:
    order_id: int
    order_no: str
    item_code: str
    email: str | None
    denomination: Decimal
    charged: Decimal
    currency: str
    created_at: datetime
    code: str
    pin: str | None
    status: str = "completed"  # "pending" until issued when completion is asynchronous
    polls_until_complete: int = 0
    fail_when_due: bool = False


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    api_key: str | None


@dataclass
class _Fault:
    method: str
    path: str
    action: str  # "status", "drop_before", "drop_after", "status_after"
    status: int = 500
    retry_after: float | None = None
    message: str = "Server error"


@dataclass
class CardPlusPayState:
    """What the fake holds, what it saw, and the switches tests flip."""

    api_key: str = API_KEY
    balance: Decimal = Decimal("1000.00")
    items: dict[str, FakeItem] = field(default_factory=dict)
    orders: list[FakeOrder] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)
    # Pages never hold more than this many entries (the docs' maximum is 100).
    max_per_page: int = 100
    # Orders come back "pending" without codes for this many GET /orders/{id} calls.
    polls_until_complete: int = 0
    # Whether order reads show the email we sent and the item code (the docs' samples elide it).
    show_email: bool = True
    # Whether GET /orders honours ``page`` (the docs do not mention it).
    honour_page: bool = True
    issue_pins: bool = True
    _faults: list[_Fault] = field(default_factory=list)
    _next_id: int = 1000

    # -- switches ------------------------------------------------------------------------

    def fail_next_with(
        self,
        status: int,
        message: str = "Server error",
        *,
        method: str = "POST",
        path: str = "/orders",
        after: bool = False,
    ) -> None:
        """Answer the next matching call with ``status`` (``after``: once the order exists)."""
        action = "status_after" if after else "status"
        self._faults.append(_Fault(method, path, action, status, message=message))

    def drop_next_after_processing(self, *, method: str = "POST", path: str = "/orders") -> None:
        """Do the work (buy the card), then close the connection without answering."""
        self._faults.append(_Fault(method, path, "drop_after"))

    def drop_next_before_processing(self, *, method: str = "POST", path: str = "/orders") -> None:
        self._faults.append(_Fault(method, path, "drop_before"))

    def rate_limit_next(
        self, retry_after: float | None, *, method: str = "POST", path: str = "/orders"
    ) -> None:
        self._faults.append(_Fault(method, path, "status", 429, retry_after))

    # -- inspection ----------------------------------------------------------------------

    def seen(self, method: str, path: str) -> list[Seen]:
        return [r for r in self.requests if r.method == method and r.path == path]

    @property
    def purchases_attempted(self) -> int:
        return len(self.seen("POST", "/orders"))

    # -- vendor-side effects -------------------------------------------------------------

    def create_order(
        self, item_code: str, email: str | None, *, created_at: datetime | None = None
    ) -> FakeOrder:
        """Buy one card, as a POST would (tests also use it for dashboard purchases)."""
        item = self.items[item_code]
        self._next_id += 1
        order = FakeOrder(
            order_id=self._next_id,
            order_no=f"ORD-2026-{self._next_id:04d}",
            item_code=item_code,
            email=email,
            denomination=item.value,
            charged=item.price,
            currency=item.currency,
            created_at=created_at or datetime.now(UTC),
            code=f"CPP-{secrets.token_hex(6).upper()}",
            pin=str(secrets.randbelow(10**7)).zfill(7) if self.issue_pins else None,
            status="pending" if self.polls_until_complete else "completed",
            polls_until_complete=self.polls_until_complete,
        )
        item.stock -= 1
        self.balance -= item.price
        self.orders.append(order)
        return order

    def _fault_for(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method == method and fault.path == path:
                self._faults.remove(fault)
                return fault
        return None


def _envelope(data: Any, message: str = "OK", status: int = 200) -> web.Response:
    body = {"success": 200 <= status < 300, "message": message, "data": data}
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, default=str))


def _error(status: int, message: str, data: Any = None) -> web.Response:
    return _envelope(data, message, status)


def _order_json(order: FakeOrder, *, detail: bool, show_email: bool) -> dict[str, Any]:
    base: dict[str, Any] = {
        "order_id": order.order_id,
        "order_no": order.order_no,
        "status": order.status,
        "amount": float(order.charged),  # a number here, a string in the create answer
        "created_at": order.created_at.isoformat(timespec="seconds"),
    }
    if not detail:
        return base
    codes = []
    if order.status == "completed":
        code: dict[str, Any] = {
            "code": order.code,
            "status": "completed",
            "currency": order.currency,
            "item_code": order.item_code if show_email else None,
            "denomination": str(order.denomination),
            "charged_amount": str(order.charged),
            "denomination_unit": order.currency,
        }
        if order.pin is not None:
            code["metadata"] = [{"Pin": order.pin}]
        codes.append(code)
    extra = {"email": order.email, "item_code": order.item_code} if show_email else {}
    return base | extra | {"state": "success", "codes": codes}


def _create_answer(order: FakeOrder) -> dict[str, Any]:
    answer = _order_json(order, detail=True, show_email=True)
    return answer | {
        "type": "bulk",
        "brand": order.item_code,
        "state": order.status,
        "amount": str(order.charged),
        "denomination_unit": order.currency,
        "total_denomination": int(order.denomination)
        if order.denomination == int(order.denomination)
        else float(order.denomination),
    }


def app(state: CardPlusPayState) -> web.Application:
    Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

    @web.middleware
    async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            body = await request.json() if request.can_read_body else None
        except ValueError:
            body = "<not json>"
        path = request.path.removeprefix("/v1")
        route = "/orders/{id}" if path.startswith("/orders/") and path[8:].isdigit() else path
        state.requests.append(
            Seen(request.method, route, dict(request.query), body, request.headers.get("X-API-Key"))
        )
        if request.headers.get("X-API-Key") != state.api_key:
            return _error(401, "Invalid or missing API key")
        fault = state._fault_for(request.method, route)
        if fault is None:
            return await handler(request)
        if fault.action == "drop_before":
            return await drop_connection(request)
        if fault.action == "status":
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            message = "Too many requests" if fault.status == 429 else fault.message
            response = _error(fault.status, message)
            response.headers.update(headers)
            return response
        await handler(request)  # the work is done...
        if fault.action == "drop_after":
            return await drop_connection(request)
        return _error(fault.status, fault.message)  # ...but the answer is an error

    async def catalog(request: web.Request) -> web.Response:
        items = list(state.items.values())
        if "item_id" in request.query:
            items = [i for i in items if i.item_code == request.query["item_id"]]
            if not items:
                return _error(404, "Product not found")
        per_page = min(int(request.query.get("per_page", "10")), state.max_per_page)
        page = int(request.query.get("page", "1"))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        products = [
            {
                "item_code": i.item_code,
                "product_name": i.product_name,
                "brand": i.product_name.split()[0],
                "category": "gift-cards",
                "value": int(i.value) if i.value == int(i.value) else float(i.value),
                "price": float(i.price),
                "currency": i.currency,
                "region": "global",
                "country_code": ["US"],
                "delivery_type": i.delivery_type,
            }
            for i in chunk
        ]
        pagination = {"total": len(items), "per_page": per_page, "current_page": page}
        return _envelope({"products": products, "pagination": pagination | {"last_page": last}})

    async def check(request: web.Request) -> web.Response:
        body = await request.json()
        item = state.items.get(str(body.get("item_id") or body.get("item_code")))
        if item is None:
            return _error(400, "Invalid item")
        quantity = int(body.get("quantity", 1))
        if item.stock < quantity:
            return _error(400, "Gift card out of stock", {"state": "out_of_stock", "status": False})
        data = {
            "price": float(item.price),
            "state": "in_stock",
            "status": True,
            "message": "Available",
            "requested": quantity,
        }
        return _envelope(data, "Gift card in Stock")

    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        code = body.get("item_code") or body.get("item_id")
        quantity = body.get("quantity", 1)
        email = body.get("email")
        if not code:
            return _error(422, "The item code field is required.")
        if not isinstance(quantity, int) or not 1 <= quantity <= 100:
            return _error(422, "The quantity must be between 1 and 100.")
        if email is not None and "@" not in str(email):
            return _error(422, "The email must be a valid email address.")
        item = state.items.get(str(code))
        if item is None:
            return _error(400, "Invalid item code")
        if state.balance < item.price * quantity:
            return _error(400, "Insufficient balance")
        if item.stock < quantity:
            return _error(400, "Gift card out of stock")
        order = state.create_order(item.item_code, email)
        return _envelope(_create_answer(order), "Gift card purchased successfully")

    async def show(request: web.Request) -> web.Response:
        order_id = int(request.match_info["order_id"])
        order = next((o for o in state.orders if o.order_id == order_id), None)
        if order is None:
            return _error(404, "Order not found")
        if order.status == "pending":
            order.polls_until_complete -= 1
            if order.polls_until_complete <= 0:
                order.status = "failed" if order.fail_when_due else "completed"
        data = _order_json(order, detail=True, show_email=state.show_email)
        return _envelope(data, "Order details retrieved successfully")

    async def listing(request: web.Request) -> web.Response:
        per_page = min(int(request.query.get("per_page", "10")), state.max_per_page)
        page = int(request.query.get("page", "1")) if state.honour_page else 1
        ordered = sorted(state.orders, key=lambda o: o.created_at, reverse=True)
        last = max(1, -(-len(ordered) // per_page))
        chunk = ordered[(page - 1) * per_page : page * per_page]
        data = {
            "orders": [_order_json(o, detail=False, show_email=False) for o in chunk],
            "pagination": {
                "total": len(ordered),
                "per_page": per_page,
                "current_page": page,
                "last_page": last,
            },
            "state": "success",
        }
        return _envelope(data, "Orders retrieved successfully")

    app = web.Application(middlewares=[gate])
    app.router.add_get("/v1/catalog", catalog)
    app.router.add_post("/v1/orders/check", check)
    app.router.add_post("/v1/orders", create)
    app.router.add_get("/v1/orders", listing)
    app.router.add_get("/v1/orders/{order_id:\\d+}", show)
    return app


def standard_state() -> CardPlusPayState:
    """A few items: one with a PIN-less physical twin, and values in USD and EUR."""
    state = CardPlusPayState()
    for item in (
        FakeItem("GOOGLE-5USD-KOXx", "Google Play 5 USD", Decimal("5.00"), Decimal("4.90")),
        FakeItem("AMZN-25USD-Q7rT", "Amazon 25 USD", Decimal(25), Decimal("24.25")),
        FakeItem("ZAL-50EUR-m2Pz", "Zalando 50 EUR", Decimal(50), Decimal("47.50"), "EUR"),
        FakeItem(
            "AMZN-25USD-PHYS", "Amazon 25 USD plastic", Decimal(25), Decimal(25), "USD", "PHYSICAL"
        ),
    ):
        state.items[item.item_code] = item
    return state


def minutes_ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)
