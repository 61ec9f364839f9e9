import io
import logging

from bot.redaction import SecretRedactor


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
    logger.info("PIN 1234 stays: too short to mask safely")
    text = out.getvalue()
    assert "abc123" not in text and "CODE-9999-XYZ" not in text
    assert text.count("[redacted]") == 3
    assert "PIN 1234" in text


def test_the_memory_is_bounded() -> None:
    redactor = SecretRedactor()
    redactor.remember(*(f"secret-{i:06d}" for i in range(1_050)))
    logger, out = _logger_with(redactor)
    logger.info("secret-000000 secret-001049")
    assert out.getvalue().strip() == "secret-000000 [redacted]"
