"""Everything a running bot holds, built once from settings and handed to the handlers."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler

from bot.catalog import Catalog
from bot.config import Settings
from bot.errors import ConfigError
from bot.jobs.deadlines import Deadlines
from bot.jobs.fulfil import Fulfillment
from bot.jobs.kinds import handlers_by_kind
from bot.jobs.notify import Notifier
from bot.jobs.resend import Redelivery
from bot.jobs.runner import JobHandler, JobRunner, Retention
from bot.metrics import Metrics
from bot.pacing import Pacer
from bot.policy.rules import Directory, Policy
from bot.redaction import REDACTOR, quiet_payload_loggers
from bot.rewards.home import HomeTab
from bot.rewards.use_cases import Rewards
from bot.slack.auth import SlackAuthCheck, TokenRefused
from bot.slack.gateway import SlackGateway
from bot.slack.in_flight import ListenersInFlight
from bot.slack.web_client import ObservedWebClient
from bot.store import JobKind, Store
from providers import PROVIDERS
from providers.base import Provider
from providers.errors import ProviderConfigError
from providers.http import DEFAULT_TIMEOUT
from providers.sandbox import SandboxProvider


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    store: Store
    providers: Mapping[str, Provider]
    catalog: Catalog
    gateway: SlackGateway
    fulfillment: Fulfillment
    rewards: Rewards
    policy: Policy
    home: HomeTab
    redelivery: Redelivery
    jobs: JobRunner
    # Shared by the provider adapters; closed with the runtime.
    http: httpx.AsyncClient
    # This runtime's own metrics registry (several runtimes may share a process).
    metrics: Metrics
    slack_auth: SlackAuthCheck
    # The Slack listeners still at work after their ack; a close waits for them first.
    listeners: ListenersInFlight = field(default_factory=ListenersInFlight)

    @classmethod
    async def create(
        cls,
        settings: Settings,
        *,
        providers: Mapping[str, Provider] | None = None,
        fulfillment_retry_delay: float = 1.0,
    ) -> Runtime:
        """Open the database and wire the parts. ``providers`` replaces the configured ones
        (tests and the demo pass instances pointed at local servers)."""
        rules = settings.policy()
        http = httpx.AsyncClient(timeout=DEFAULT_TIMEOUT)
        if providers is None:
            providers = _providers_from_env(settings.enabled_providers(), http)
        store = await Store.open(settings.database)
        quiet_payload_loggers()
        metrics = _watched(settings, providers)
        pacer = Pacer(store)
        for provider in providers.values():
            provider.pace_calls(pacer)
        gateway = _slack_gateway(
            settings, store, providers, metrics, pacer if settings.slack_pacing else None
        )
        catalog = Catalog(providers)
        fulfillment = Fulfillment(
            store,
            providers,
            gateway,
            retry_base_delay=fulfillment_retry_delay,
            # The DM's call times out by then; the margin covers Slack finishing it.
            delivery_in_flight=settings.slack_timeout_seconds + 2.0,
        )
        policy = Policy(rules, Directory(gateway.usergroup_members))
        home = HomeTab(store, gateway, policy, sandbox=SandboxProvider.name in providers)
        redelivery = Redelivery(store, providers, gateway, policy)
        handlers = handlers_by_kind(
            fulfillment=fulfillment,
            notifier=Notifier(store, gateway, policy, home),
            deadlines=Deadlines(store, gateway, policy),
            redelivery=redelivery,
        )
        jobs = _job_runner(settings, store, handlers, metrics, fulfillment_retry_delay)
        store.on_jobs_queued = jobs.wake
        rewards = Rewards.create(store, catalog, gateway, policy, providers, metrics)
        return cls(
            settings,
            store,
            providers,
            catalog,
            gateway,
            fulfillment,
            rewards,
            policy,
            home,
            redelivery,
            jobs,
            http,
            metrics,
            SlackAuthCheck(gateway, settings.slack_api_url),
        )

    async def start(self) -> None:
        """Check that Slack accepts the bot token (a refusal stops start-up; a Slack that cannot
        say is asked again in the background, the bot unready meanwhile), warm the catalog
        (so the first modal opens fast), then run queued jobs: whatever a previous run left
        unfinished resumes here."""
        try:
            await self.slack_auth.first()
        except TokenRefused as refused:
            raise ConfigError(
                f"Slack refused SLACK_BOT_TOKEN ({refused.error}): check the bot token of the "
                "app's installation."
            ) from None
        await self.catalog.products()
        self.jobs.start()

    async def aclose(self) -> None:
        """Stop taking work, let the Slack listeners and the running jobs finish briefly (the
        jobs give back the rest), close."""
        # Long enough for a listener's Web API call that is under way to end, if only by its
        # timeout, and the listener's last step after it.
        await asyncio.gather(
            self.listeners.drain(self.settings.slack_timeout_seconds + 2.0), self.jobs.stop()
        )
        await self.slack_auth.aclose()
        await self.catalog.aclose()
        for provider in self.providers.values():
            await provider.aclose()
        await self.http.aclose()
        await self.store.close()


def _slack_gateway(
    settings: Settings,
    store: Store,
    providers: Mapping[str, Provider],
    metrics: Metrics,
    pacer: Pacer | None,
) -> SlackGateway:
    """The gateway to Slack's Web API, with the bot's token, its failures and 429s counted, its
    job-driven messages paced per channel by ``pacer`` (if any); its approval cards offer an
    email resend for the providers that can make one."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    client = ObservedWebClient(
        metrics,
        token=token,
        base_url=settings.slack_api_url,
        timeout=settings.slack_timeout_seconds,
    )
    # Slack's 429s say how long to wait; honour them instead of failing the call.
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=3))
    resendable = [n for n, p in providers.items() if p.can_resend]
    return SlackGateway(client, store, metrics, resendable=resendable, pacer=pacer)


def _watched(settings: Settings, providers: Mapping[str, Provider]) -> Metrics:
    """Keep every credential out of the logs, and count every provider call in the metrics
    it returns."""
    # Masked in every log line from now on, at any level: nothing logs them on purpose.
    REDACTOR.keep(
        *settings.secrets(),
        *(c.get_secret_value() for p in providers.values() for c in p.credentials()),
    )
    metrics = Metrics()
    for provider in providers.values():
        provider.observe_calls(metrics)
    return metrics


def _job_runner(
    settings: Settings,
    store: Store,
    handlers: Mapping[JobKind, JobHandler],
    metrics: Metrics,
    retry_delay: float,
) -> JobRunner:
    return JobRunner(
        store,
        handlers,
        lease_seconds=settings.job_lease_seconds,
        base_backoff=2.0 * retry_delay,
        retention=Retention(keep=timedelta(days=settings.job_retention_days)),
        metrics=metrics,
    )


def _providers_from_env(names: list[str], http: httpx.AsyncClient) -> dict[str, Provider]:
    """One adapter per enabled provider, keyed by its canonical name (``wegift`` is ``runa``)."""
    providers: dict[str, Provider] = {}
    for name in names:
        adapter_class = PROVIDERS[name]
        if adapter_class.name in providers:
            continue
        try:
            providers[adapter_class.name] = adapter_class.from_env(http)
        except ProviderConfigError as exc:
            raise ConfigError(f"Provider {name}: {exc.message}") from None
    return providers
