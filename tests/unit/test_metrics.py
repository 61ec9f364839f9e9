"""The metrics' own rules: providers report each call by operation and outcome, labels stay
kinds of things, and every runtime's registry counts apart."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bot.domain import Status
from bot.jobs.runner import GiveUp, JobRunner
from bot.metrics import Metrics
from bot.store import Job, JobKind, Store
from providers.base import OrderRequest, OrderResult, OrderState, Product, SendLog
from providers.errors import OrderDeclined, ProviderUnavailable
from providers.http import HttpProvider, RetryPolicy
from tests.unit.support import new_request


class _Observer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def provider_call(self, provider: str, operation: str, outcome: str, seconds: float) -> None:
        assert seconds >= 0
        self.calls.append((provider, operation, outcome))


class _Vendor(HttpProvider):
    name = "vendor"

    async def list_products(self) -> list[Product]:
        return []

    async def place_order(self, order: OrderRequest, sends: SendLog | None = None) -> OrderResult:
        raise NotImplementedError

    async def get_order(self, provider_order_id: str) -> OrderResult:
        await self._request("GET", f"/orders/{provider_order_id}")
        return OrderResult(provider_order_id=provider_order_id, state=OrderState.PENDING)


def _vendor(*statuses: int) -> _Vendor:
    answers = iter(statuses)
    transport = httpx.MockTransport(lambda _: httpx.Response(next(answers), json={}))
    return _Vendor(
        httpx.AsyncClient(transport=transport),
        "http://vendor.test",
        retry=RetryPolicy(attempts=3, base_delay=0),
    )


async def test_each_attempt_is_reported_with_its_operation_and_outcome_never_its_path() -> None:
    observer = _Observer()
    vendor = _vendor(503, 429, 200)
    vendor.observe_calls(observer)
    await vendor.get_order("ORDER-SECRET-42")
    assert observer.calls == [
        ("vendor", "get_order", "server_error"),
        ("vendor", "get_order", "rate_limited"),
        ("vendor", "get_order", "ok"),
    ]


async def test_a_call_outside_an_operation_and_a_refusal_are_reported_too() -> None:
    observer = _Observer()
    vendor = _vendor(404)
    vendor.observe_calls(observer)
    with pytest.raises(OrderDeclined):
        await vendor._request("GET", "/ping")
    assert observer.calls == [("vendor", "other", "client_error")]


async def test_a_timeout_is_reported_as_one() -> None:
    def time_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    observer = _Observer()
    vendor = _Vendor(
        httpx.AsyncClient(transport=httpx.MockTransport(time_out)),
        "http://vendor.test",
        retry=RetryPolicy(attempts=1),
    )
    vendor.observe_calls(observer)
    with pytest.raises(ProviderUnavailable):
        await vendor.get_order("A1")
    assert observer.calls == [("vendor", "get_order", "timeout")]


async def test_an_unobserved_vendor_still_works() -> None:
    vendor = _vendor(200)
    assert (await vendor.get_order("A1")).state is OrderState.PENDING


def test_slack_error_codes_that_are_not_codes_become_other() -> None:
    metrics = Metrics()
    metrics.slack_error("chat.postMessage", "channel_not_found")
    metrics.slack_error("chat.postMessage", "Jane Doe <jane@example.com>")
    text = generate_latest(metrics.registry).decode()
    assert 'error="channel_not_found"' in text
    assert 'error="other"' in text
    assert "jane" not in text


def test_every_runtime_counts_in_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.jobs_retried.labels("notify").inc()
    assert first.jobs_retried.labels("notify")._value.get() == 1
    assert second.jobs_retried.labels("notify")._value.get() == 0


def _sample(text: str, name: str, kind: str) -> float:
    """One job kind's sample; a scrape without it fails."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == {"kind": kind}:
                return float(sample.value)
    raise AssertionError(f"no sample {name}{{kind={kind!r}}} in the scrape")


async def test_the_job_queue_and_failing_jobs_show_in_the_job_metrics(database: str) -> None:
    """Waiting jobs show as a queue depth and an oldest-due age; a failing job is counted as
    retried, then as given up."""
    store = await Store.open(database)
    metrics = Metrics()
    request, _ = await store.create_request(new_request(), "V1")
    await store.transition(
        request.id, Status.PENDING_APPROVAL, Status.APPROVED, "UAPP", then=[JobKind.FULFIL]
    )
    await asyncio.sleep(0.05)
    waiting = (await metrics.exposition(store)).decode()
    assert _sample(waiting, "rewardbot_job_queue_depth", "fulfil") == 1
    assert _sample(waiting, "rewardbot_job_queue_depth", "notify") == 2
    assert _sample(waiting, "rewardbot_job_oldest_due_age_seconds", "fulfil") > 0
    assert _sample(waiting, "rewardbot_job_oldest_due_age_seconds", "notify") > 0

    async def fails(_job: Job) -> None:
        raise ValueError("the provider is down")

    async def announced(_job: Job) -> None:
        return None

    runner = JobRunner(
        store,
        {JobKind.FULFIL: fails, JobKind.NOTIFY: announced},
        give_up={JobKind.FULFIL: GiveUp(attempts=2)},
        poll_interval=0.05,
        base_backoff=0.01,
        metrics=metrics,
    )
    runner.start()
    try:
        await asyncio.wait_for(runner.wait_idle(), 10)
    finally:
        await runner.stop()
    done = (await metrics.exposition(store)).decode()
    await store.close()
    assert _sample(done, "rewardbot_jobs_retried_total", "fulfil") == 1
    assert _sample(done, "rewardbot_jobs_given_up_total", "fulfil") == 1
    assert _sample(done, "rewardbot_job_queue_depth", "fulfil") == 0
    assert _sample(done, "rewardbot_job_oldest_due_age_seconds", "fulfil") == 0
