"""The products managers can pick, gathered from every enabled provider and cached."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from providers.base import Product, Provider
from providers.errors import ProviderError

log = logging.getLogger(__name__)


class Catalog:
    """Products of all enabled providers, refreshed at most every ``ttl`` seconds."""

    def __init__(self, providers: Mapping[str, Provider], ttl: float = 300.0) -> None:
        self._providers = providers
        self._ttl = ttl
        self._products: dict[str, Product] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    async def products(self) -> list[Product]:
        async with self._lock:
            if self._loaded_at is None or time.monotonic() - self._loaded_at > self._ttl:
                await self._reload()
        return list(self._products.values())

    async def find(self, key: str) -> Product | None:
        """The product behind a select option value (``provider:product_id``)."""
        await self.products()
        return self._products.get(key)

    async def _reload(self) -> None:
        products: dict[str, Product] = {}
        for name, provider in self._providers.items():
            try:
                listed = await provider.list_products()
            except ProviderError as exc:
                # Keep offering what we knew; one provider's outage must not empty the modal.
                log.warning("could not load the %s catalog: %s", name, exc.message)
                products.update({k: p for k, p in self._products.items() if p.provider == name})
                continue
            products.update((p.key, p) for p in listed)
        self._products = products
        self._loaded_at = time.monotonic()
