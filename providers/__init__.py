"""Gift-card provider adapters and the registry the bot builds them from."""

from __future__ import annotations

from providers.base import Provider
from providers.sandbox import SandboxProvider

PROVIDERS: dict[str, type[Provider]] = {
    "sandbox": SandboxProvider,
}
