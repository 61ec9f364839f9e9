"""Defence in depth for logs: every redemption secret the bot handles, and every credential it
holds from the start, is masked in log output (and in the error text a failed job keeps).

The bot never logs a link, code, PIN, token or key on purpose; this filter catches what a
library might (an HTTP client's debug output, an exception's repr). Secrets are remembered only
in memory: redemption secrets in a bounded set of the latest, credentials (kept from start-up by
:meth:`~bot.runtime.Runtime.create`) for as long as the process runs.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict

_MASK = "[redacted]"
# Recent secrets only: each log record is checked against all of them.
_MAX_REMEMBERED = 1_000
# Shorter values (a 4-digit PIN) are masked only where they stand alone, so that innocent
# numbers containing them (a timestamp) stay readable.
_SHORT = 6
# Libraries that log whole request and response bodies (Slack payloads carry the delivery DM:
# its link, code and PIN) or credentials (HTTP headers) at DEBUG. Nothing of theirs below INFO
# is ever written, whatever the root level.
PAYLOAD_LOGGERS = ("slack_sdk", "slack_bolt", "httpcore", "hpack", "websockets")
# What every record has; anything else on a record is an extra field (``extra=``, the request
# context), which the JSON format writes out as it is, so it is masked too.
_STANDARD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class SecretRedactor(logging.Filter):
    """A logging filter that replaces remembered secrets in every record it sees."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: OrderedDict[str, None] = OrderedDict()
        # Credentials: few, and never forgotten, however many redemption secrets follow.
        self._kept: dict[str, None] = {}

    def keep(self, *secrets: str | None) -> None:
        """Mask these for the life of the process (the bot's tokens and provider keys)."""
        for secret in secrets:
            if secret and secret.strip():
                self._kept[secret] = None

    def remember(self, *secrets: str | None) -> None:
        """Mask these from now on, whatever their length."""
        for secret in secrets:
            if secret and secret.strip():
                self._secrets[secret] = None
                self._secrets.move_to_end(secret)
        while len(self._secrets) > _MAX_REMEMBERED:
            self._secrets.popitem(last=False)

    def mask(self, text: str) -> str:
        """``text`` with every remembered secret masked (for text kept outside the logs, such
        as a failed job's last error)."""
        for secret in (*self._kept, *self._secrets):
            if len(secret) >= _SHORT:
                text = text.replace(secret, _MASK)
            elif secret in text:
                text = re.sub(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", _MASK, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO and record.name.startswith(PAYLOAD_LOGGERS):
            return False
        message = record.getMessage()
        masked = self.mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # Format the traceback now, so the formatter prints the masked copy.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        self._mask_extra_fields(record)
        return True

    def _mask_extra_fields(self, record: logging.LogRecord) -> None:
        for name, value in list(vars(record).items()):
            if name in _STANDARD_FIELDS or value is None or isinstance(value, int | float):
                continue
            text = value if isinstance(value, str) else repr(value)
            masked = self.mask(text)
            if masked != text:
                setattr(record, name, masked)

    def install(self) -> None:
        """Mask secrets in everything the root logger's handlers write, and drop the payload
        loggers' debug records there."""
        quiet_payload_loggers()
        for handler in logging.getLogger().handlers:
            if self not in handler.filters:
                handler.addFilter(self)


def quiet_payload_loggers(*more: logging.Logger) -> None:
    """Hold the payload loggers (and ``more``, such as the logger Bolt makes for an app with
    the root's level) at INFO, so their debug records are never even made."""
    for logger in (*(logging.getLogger(name) for name in PAYLOAD_LOGGERS), *more):
        if logger.getEffectiveLevel() < logging.INFO or logger.level < logging.INFO:
            logger.setLevel(logging.INFO)


REDACTOR = SecretRedactor()
