"""Both log formats: the request context on each line, and the redaction filter applied to
everything either writes (message, extra fields, traceback)."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bot.log_context import LogContextFilter, context_for, log_context
from bot.logs import JsonLinesFormatter, TextFormatter
from bot.redaction import SecretRedactor

SECRET = "https://cards.example/redeem/abc123XYZ"


@pytest.fixture
def redactor() -> SecretRedactor:
    redactor = SecretRedactor()
    redactor.remember(SECRET)
    return redactor


def _logger(
    formatter: logging.Formatter, redactor: SecretRedactor
) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    handler.addFilter(LogContextFilter())
    handler.addFilter(redactor)
    logger = logging.getLogger(f"test-logs-{id(out)}")
    logger.handlers = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger, out


@pytest.fixture
def json_log(redactor: SecretRedactor) -> tuple[logging.Logger, io.StringIO]:
    return _logger(JsonLinesFormatter(), redactor)


def test_text_lines_say_which_request_and_reward_they_are_about(redactor: SecretRedactor) -> None:
    logger, out = _logger(TextFormatter(), redactor)
    logger.info("before")
    with log_context("ab12cd", 7):
        logger.info("about the reward")
    with log_context("ef34"):
        logger.info("reward not known yet")
    lines = out.getvalue().splitlines()
    assert lines[0].endswith(f"INFO {logger.name}: before")
    assert lines[1].endswith(f"INFO {logger.name}: [req=ab12cd reward=7] about the reward")
    assert lines[2].endswith(f"INFO {logger.name}: [req=ef34] reward not known yet")


def test_json_lines_carry_time_level_logger_message_and_context(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = json_log
    with log_context("ab12cd", 7):
        logger.warning("job %s failed", 3)
    logger.info("outside")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["level"] == "WARNING" and first["logger"] == logger.name
    assert first["message"] == "job 3 failed" and first["time"].startswith("20")
    assert (first["request_id"], first["reward_id"]) == ("ab12cd", 7)
    assert "request_id" not in second and "reward_id" not in second


def test_a_task_given_a_context_logs_with_it_and_leaves_the_callers_alone(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = json_log
    context_for("job-5", 9).run(logger.info, "in the job")
    logger.info("outside")
    inside, outside = (json.loads(line) for line in out.getvalue().splitlines())
    assert (inside["request_id"], inside["reward_id"]) == ("job-5", 9)
    assert "request_id" not in outside


def test_json_output_is_redacted_everywhere(json_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = json_log
    logger.info("posting %s", SECRET, extra={"url": SECRET, "body": {"link": SECRET}})
    try:
        raise ValueError(f"bad link {SECRET}")
    except ValueError:
        logger.exception("failed")
    logger.info("stack", stack_info=True, extra={"note": f"see {SECRET}"})
    text = out.getvalue()
    assert "abc123XYZ" not in text
    records = [json.loads(line) for line in text.splitlines()]
    assert records[0]["url"] == "[redacted]" and "[redacted]" in records[0]["body"]
    assert "ValueError: bad link [redacted]" in records[1]["exc_info"]
    assert records[2]["note"] == "see [redacted]"
