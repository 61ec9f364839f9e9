"""Runa's webhooks, verified as Svix / Standard Webhooks (see the package docstring)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping

from pydantic import SecretStr, ValidationError

from providers.base import WebhookNotice
from providers.errors import WebhookRejected
from providers.runa._json import _WebhookBody

WEBHOOK_TOLERANCE = 5 * 60  # seconds, either way


def _webhook_key(secret: SecretStr) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` signing secret (ValueError if malformed)."""
    encoded = secret.get_secret_value().strip().removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "must be the whsec_… signing secret from the Runa webhook portal"
        ) from None
    if not key:
        raise ValueError("must be the whsec_… signing secret from the Runa webhook portal")
    return key


def _verify_signature(key: bytes, headers: Mapping[str, str], body: bytes) -> None:
    """Raise :class:`WebhookRejected` unless the delivery is signed with ``key``, recently."""
    lowered = {k.lower(): v for k, v in headers.items()}

    def header(name: str) -> str:
        return (lowered.get(f"webhook-{name}") or lowered.get(f"svix-{name}") or "").strip()

    msg_id, timestamp, signatures = header("id"), header("timestamp"), header("signature")
    if not (msg_id and timestamp and signatures):
        raise WebhookRejected("The Runa webhook is missing its signature headers.")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise WebhookRejected("The Runa webhook timestamp is not a number.") from None
    if abs(time.time() - sent_at) > WEBHOOK_TOLERANCE:
        raise WebhookRejected("The Runa webhook timestamp is too old or in the future.")
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    valid = False
    for entry in signatures.split():
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected.encode()):
            valid = True  # keep comparing: do not leak which entry matched by timing
    if not valid:
        raise WebhookRejected("The Runa webhook signature does not match.")


def _notice(body: bytes) -> WebhookNotice | None:
    """The order a verified delivery is about; ``None`` if it is about no order."""
    try:
        data = json.loads(body)
    except ValueError:
        raise WebhookRejected("The Runa webhook body is not JSON.") from None
    if not isinstance(data, dict):
        raise WebhookRejected("The Runa webhook body is not a JSON object.")
    try:
        event = _WebhookBody.model_validate(data)
    except ValidationError:
        raise WebhookRejected("The Runa webhook body is not understood.") from None
    if event.id and event.status in ("COMPLETED", "FAILED", "PROCESSING"):
        return WebhookNotice(provider_order_id=event.id)
    return None  # e.g. product.update: authentic, but not about an order
