import asyncio
import io
import logging
import sqlite3
from decimal import Decimal
from pathlib import Path

from bot.domain import Money, NewRewardRequest, Status
from bot.jobs.runner import GiveUp, JobRunner
from bot.redaction import REDACTOR, SecretRedactor
from bot.store import Job, JobKind, Store


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


async def test_a_failed_jobs_kept_error_is_masked_too(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "r.db")
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
    with sqlite3.connect(tmp_path / "r.db") as db:
        [(error,)] = db.execute("SELECT last_error FROM jobs WHERE kind = 'fulfil'").fetchall()
    assert "could not build a redemption" in error
    assert link not in error and "[redacted]" in error
