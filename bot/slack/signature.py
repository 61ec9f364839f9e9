"""Refuse before reading: Slack's HTTP requests are authenticated on their raw bytes first.

Nothing of a request is parsed (no form, no JSON) until its signature has been checked against
the signing secret, so an unsigned request costs a few header comparisons and, at most, one
HMAC over a body no larger than :data:`MAX_BODY_BYTES`. Every refusal is a 401 (or 413 for a
body too large to be Slack's) with one short log line: never a parse error, a 500 or a
traceback.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

from aiohttp import web

log = logging.getLogger(__name__)

# No genuine Slack request to this app comes near this. The largest is a view_submission: the
# whole view (at most 100 blocks, each text at most 3,000 characters: about 300 kB of JSON) and
# its state, form-encoded. Our own modals are a few kilobytes. A body over this is refused
# unread (413).
MAX_BODY_BYTES = 1024 * 1024
# Slack's documented window for the request timestamp: older requests may be replays.
MAX_AGE_SECONDS = 5 * 60
_CHUNK = 64 * 1024


class RequestRefused(Exception):
    """A request that is not (provably) Slack's: answered at once, never read further."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def response(self) -> web.Response:
        return web.Response(status=self.status, text=self.reason)


class SlackSignature:
    """Checks ``X-Slack-Signature`` (v0 HMAC-SHA256 over ``v0:timestamp:body``)."""

    def __init__(self, signing_secret: str) -> None:
        self._key = signing_secret.encode()

    async def verified_body(self, request: web.Request) -> bytes:
        """The raw body of a request Slack signed; raises :class:`RequestRefused` otherwise,
        having read as little as possible: the headers first, the body only if they could be
        Slack's, and never more than :data:`MAX_BODY_BYTES`."""
        try:
            return await self._verify(request)
        except RequestRefused as refused:
            log.warning(
                "refused a request to %s from %s: %s",
                request.path,
                request.remote,
                refused.reason,
            )
            raise

    async def _verify(self, request: web.Request) -> bytes:
        signature = request.headers.get("X-Slack-Signature", "")
        stamp = request.headers.get("X-Slack-Request-Timestamp", "")
        if not signature.startswith("v0=") or not stamp:
            raise RequestRefused(401, "unsigned")
        if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
            raise RequestRefused(401, "malformed timestamp")
        if abs(time.time() - int(stamp)) > MAX_AGE_SECONDS:
            raise RequestRefused(401, "stale timestamp")
        if (request.content_length or 0) > MAX_BODY_BYTES:
            raise RequestRefused(413, "body too large")
        body = await _read_at_most(request, MAX_BODY_BYTES)
        expected = hmac.new(self._key, b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
        if not hmac.compare_digest("v0=" + expected.hexdigest(), signature):
            raise RequestRefused(401, "bad signature")
        return body


async def _read_at_most(request: web.Request, limit: int) -> bytes:
    """The body, or :class:`RequestRefused` (413) as soon as it passes ``limit`` (a chunked
    body says nothing of its length up front)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise RequestRefused(413, "body too large")
        chunks.append(chunk)
    return b"".join(chunks)
