"""Where log records go and how they read: one handler on standard error, in plain text or one
JSON object per line (``REWARDBOT_LOG_FORMAT``), at ``REWARDBOT_LOG_LEVEL``, every record
stamped with the request it is about (:mod:`bot.log_context`) and then masked
(:mod:`bot.redaction`), in that order, whichever format writes it."""

from __future__ import annotations

import logging
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

from bot.log_context import LogContextFilter
from bot.redaction import REDACTOR

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["text", "json"]


_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(about)s%(message)s"


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: [req=… reward=…] message``, the brackets only on a record about a
    request."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        about = " ".join(
            f"{label}={value}"
            for label, value in (
                ("req", getattr(record, "request_id", None)),
                ("reward", getattr(record, "reward_id", None)),
            )
            if value is not None
        )
        return _TEXT_FORMAT % {**vars(record), "about": f"[{about}] " if about else ""}


class JsonLinesFormatter(JsonFormatter):
    """One JSON object per record: ``time``, ``level``, ``logger``, ``message``, the request
    context and any other extra fields."""

    def __init__(self) -> None:
        super().__init__(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and record.exc_text:
            # The redaction filter has masked the traceback's text; python-json-logger would
            # format the exception afresh, unmasked, if it still had it.
            record = logging.makeLogRecord({**vars(record), "exc_info": None})
        return super().format(record)


def setup_logging(level: LogLevel, log_format: LogFormat) -> None:
    """Send every record at ``level`` and above to standard error in ``log_format``, replacing
    any handler set before."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLinesFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(LogContextFilter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # Alembic narrates every start ("Context impl ...") at INFO: only its problems are news.
    # The schema's own upgrades are logged by bot.store.schema.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    REDACTOR.install()
