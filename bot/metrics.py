"""Every Prometheus metric the bot exports, in one registry per :class:`~bot.runtime.Runtime`.

A registry of its own (never prometheus-client's global ``REGISTRY``), so several runtimes in
one process (the tests) count apart. Labels name kinds of things only (a status, a job kind, a
provider, a Slack method or error code), never a user, a request or an amount.

Counters and histograms move as things happen; the gauges that describe stored state (requests
by status, the job queue) are read from the database when ``/metrics`` is scraped, so every
process sharing a database reports the same numbers.
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from bot.domain import Status
from bot.store import JobKind, Store

# The text format every Prometheus version reads (the names here need nothing newer).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# Waits measured in human time: from seconds (a quick approver) to days (a weekend).
_HUMAN_BUCKETS = (10.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86_400.0, 3 * 86_400.0)
# A Slack error code is a short snake_case word; anything else is reported as "other".
_ERROR_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")


class Metrics:
    """The bot's metrics: what the code observes, and what a scrape reads from the store."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._define_request_metrics(self.registry)
        self._define_job_metrics(self.registry)
        self._define_call_metrics(self.registry)

    def _define_request_metrics(self, r: CollectorRegistry) -> None:
        self.requests = Gauge(
            "rewardbot_requests", "Reward requests by current status.", ["status"], registry=r
        )
        self.approval_wait = Histogram(
            "rewardbot_approval_wait_seconds",
            "From a request's creation to its final approval or rejection.",
            ["decision"],
            buckets=_HUMAN_BUCKETS,
            registry=r,
        )
        self.delivery_time = Histogram(
            "rewardbot_approval_to_delivery_seconds",
            "From a request's final approval to its delivery DM being sent.",
            buckets=(1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 86_400.0),
            registry=r,
        )

    def _define_job_metrics(self, r: CollectorRegistry) -> None:
        self.job_queue_depth = Gauge(
            "rewardbot_job_queue_depth",
            "Unfinished jobs that are due now (waiting to run or running), by kind.",
            ["kind"],
            registry=r,
        )
        self.job_oldest_due_age = Gauge(
            "rewardbot_job_oldest_due_age_seconds",
            "How long the oldest unfinished due job of a kind has been due (0 if none).",
            ["kind"],
            registry=r,
        )
        self.jobs_retried = Counter(
            "rewardbot_jobs_retried_total",
            "Failed job runs put back to be retried with backoff, by kind.",
            ["kind"],
            registry=r,
        )
        self.jobs_given_up = Counter(
            "rewardbot_jobs_given_up_total",
            "Failing jobs given up (kept with their last error), by kind.",
            ["kind"],
            registry=r,
        )

    def _define_call_metrics(self, r: CollectorRegistry) -> None:
        self.provider_calls = Counter(
            "rewardbot_provider_calls_total",
            "HTTP calls to gift-card providers, by provider, operation and outcome.",
            ["provider", "operation", "outcome"],
            registry=r,
        )
        self.provider_latency = Histogram(
            "rewardbot_provider_call_duration_seconds",
            "How long one HTTP call to a gift-card provider took.",
            ["provider", "operation"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0),
            registry=r,
        )
        self.slack_errors = Counter(
            "rewardbot_slack_api_errors_total",
            "Slack Web API calls that failed, by method and Slack's error code.",
            ["method", "error"],
            registry=r,
        )
        self.slack_rate_limited = Counter(
            "rewardbot_slack_rate_limited_total",
            "HTTP 429 answers from the Slack Web API, by method.",
            ["method"],
            registry=r,
        )

    # -- what the code reports ---------------------------------------------------------------

    def provider_call(self, provider: str, operation: str, outcome: str, seconds: float) -> None:
        """One HTTP call to a provider (:class:`providers.base.CallObserver`)."""
        self.provider_calls.labels(provider, operation, outcome).inc()
        self.provider_latency.labels(provider, operation).observe(seconds)

    def slack_error(self, method: str, error: str) -> None:
        """A failed Slack Web API call; ``error`` is Slack's code, or how the call failed."""
        code = error if _ERROR_CODE.fullmatch(error) else "other"
        self.slack_errors.labels(method, code).inc()

    def slack_rate_limit(self, method: str) -> None:
        self.slack_rate_limited.labels(method).inc()

    # -- a scrape ----------------------------------------------------------------------------

    async def exposition(self, store: Store) -> bytes:
        """Every metric in Prometheus' text format, the stored state read just now."""
        counts = await store.count_by_status()
        for status in Status:
            self.requests.labels(status.value).set(counts.get(status, 0))
        queue = await store.due_jobs_by_kind()
        for kind in JobKind:
            depth, oldest = queue.get(kind, (0, 0.0))
            self.job_queue_depth.labels(kind.value).set(depth)
            self.job_oldest_due_age.labels(kind.value).set(oldest)
        return generate_latest(self.registry)
