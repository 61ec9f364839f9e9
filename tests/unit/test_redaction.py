import asyncio
import base64
import io
import logging
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr

from bot.config import load_settings
from bot.domain import Money, NewRewardRequest, Status
from bot.jobs.runner import GiveUp, JobRunner
from bot.redaction import REDACTOR, SecretRedactor
from bot.runtime import Runtime
from bot.store import Job, JobKind, Store
from providers.base import Provider
from providers.cardpluspay import CardPlusPayProvider
from providers.giftronaut import GiftronautProvider
from providers.runa import RunaProvider
from tests.support import sql_rows


def _logger_with(redactor: SecretRedactor) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(redactor)
    logger = logging.getLogger(f"test-redaction-{id(redactor)}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger, out


def test_remembered_secrets_are_masked_in_messages_args_and_tracebacks() -> None:
    redactor = SecretRedactor()
    redactor.remember("https://cards.example/redeem/abc123", "CODE-9999-XYZ", None, "1234")
    logger, out = _logger_with(redactor)
    logger.debug("posting %s", {"url": "https://cards.example/redeem/abc123"})
    try:
        raise ValueError("bad code CODE-9999-XYZ")
    except ValueError:
        logger.exception("failed")
    # A short PIN is masked where it stands alone, whatever its length...
    logger.info("PIN 1234 was shown")
    # ...but not inside a longer number, which it would garble.
    logger.info("at 2026-12-03 10:12:34, order 5512345")
    text = out.getvalue()
    assert "abc123" not in text and "CODE-9999-XYZ" not in text
    assert "PIN [redacted] was shown" in text
    assert text.count("[redacted]") == 4
    assert "order 5512345" in text and "10:12:34" in text


def test_the_memory_is_bounded() -> None:
    redactor = SecretRedactor()
    redactor.remember(*(f"secret-{i:06d}" for i in range(1_050)))
    logger, out = _logger_with(redactor)
    logger.info("secret-000000 secret-001049")
    assert out.getvalue().strip() == "secret-000000 [redacted]"


async def test_a_failed_jobs_kept_error_is_masked_too(database: str) -> None:
    store = await Store.open(database)
    request, _ = await store.create_request(
        NewRewardRequest(
            requester_id="UREQ",
            recipient_id="UREC",
            origin_channel_id="CGEN",
            face_value=Money(amount=Decimal(25), currency="GBP"),
            provider="sandbox",
            product_id="SBX-BOOKS-GBP",
            product_name="Sandbox Books",
            message="thanks",
        ),
        "V1",
    )
    link = "https://cards.example/redeem/kept-error-7f3a"
    REDACTOR.remember(link)

    async def fails(_job: Job) -> None:
        raise ValueError(f"could not build a redemption from {link}")

    await store.transition(
        request.id, Status.PENDING_APPROVAL, Status.APPROVED, "UAPP", then=[JobKind.FULFIL]
    )

    async def announced(_job: Job) -> None:
        return None

    handlers = {JobKind.FULFIL: fails, JobKind.NOTIFY: announced}
    runner = JobRunner(store, handlers, give_up={JobKind.FULFIL: GiveUp(attempts=1)})
    runner.start()
    await asyncio.wait_for(runner.wait_idle(), 5)
    await runner.stop()
    await store.close()
    [row] = await sql_rows(database, "SELECT last_error FROM jobs WHERE kind = 'fulfil'")
    error = row["last_error"]
    assert "could not build a redemption" in error
    assert link not in error and "[redacted]" in error


def test_kept_credentials_are_never_forgotten() -> None:
    redactor = SecretRedactor()
    redactor.keep("xoxb-kept-bot-token", None, "")
    redactor.remember(*(f"secret-{i:06d}" for i in range(1_050)))
    logger, out = _logger_with(redactor)
    logger.debug("Authorization: Bearer xoxb-kept-bot-token")
    assert out.getvalue().strip() == "Authorization: Bearer [redacted]"


# A well-formed Svix secret (whsec_ + base64), as Runa issues them.
RUNA_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"runa-unit-webhook-key-2024").decode()


async def test_every_credential_the_bot_starts_with_is_masked_at_any_level(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Slack tokens and signing secret from the settings, and the providers' keys and
    secrets from their adapters, are masked from the moment the runtime exists."""
    credentials = {
        "SLACK_BOT_TOKEN": "xoxb-unit-bot-token-5150",
        "SLACK_SIGNING_SECRET": "unit-signing-secret-8191",
        "SLACK_APP_TOKEN": "xapp-unit-app-token-2718",
    }
    for name, value in credentials.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(REWARDBOT_DATABASE=database, REWARDBOT_APPROVERS="U0ARJUN")
    async with httpx.AsyncClient() as http:
        providers: dict[str, Provider] = {
            "giftronaut": GiftronautProvider(
                http, client_id="unit-client", client_secret=SecretStr("gt-unit-secret-3141")
            ),
            "cardpluspay": CardPlusPayProvider(http, "cpp-unit-key-1618", "http://127.0.0.1:9"),
            "runa": RunaProvider(
                http,
                api_key=SecretStr("runa-unit-key-1414"),
                webhook_secret=SecretStr(RUNA_WEBHOOK_SECRET),
            ),
        }
        runtime = await Runtime.create(settings, providers=providers)
        try:
            logger, out = _logger_with(REDACTOR)
            secrets = [
                *credentials.values(),
                "gt-unit-secret-3141",
                "cpp-unit-key-1618",
                "runa-unit-key-1414",
                RUNA_WEBHOOK_SECRET,
            ]
            for level in (logging.DEBUG, logging.INFO, logging.ERROR):
                logger.log(level, "calling with %s", ", ".join(secrets), extra={"k": secrets})
        finally:
            await runtime.aclose()
    text = out.getvalue()
    assert text.count("[redacted]") == 3 * len(secrets), text
    for secret in secrets:
        assert secret not in text
