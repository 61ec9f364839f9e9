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
    """Products of all enabled providers, refreshed every ``ttl`` seconds.

    Once loaded, a stale catalog is served at once and refreshed in the background: the modal
    must open within Slack's 3-second trigger window, whatever a provider's latency.
    """

    def __init__(
        self, providers: Mapping[str, Provider], ttl: float = 300.0, load_timeout: float = 10.0
    ) -> None:
        self._providers = providers
        self._ttl = ttl
        self._load_timeout = load_timeout
        self._products: dict[str, Product] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None

    async def products(self) -> list[Product]:
        if self._loaded_at is None:
            async with self._lock:
                if self._loaded_at is None:
                    await self._reload()
        elif time.monotonic() - self._loaded_at > self._ttl and not self._refreshing:
            self._refresh = asyncio.create_task(self._reload(), name="catalog-refresh")
        return list(self._products.values())

    @property
    def _refreshing(self) -> bool:
        return self._refresh is not None and not self._refresh.done()

    async def find(self, key: str) -> Product | None:
        """The product behind a select option value (``provider:product_id``)."""
        await self.products()
        return self._products.get(key)

    async def aclose(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()

    async def _reload(self) -> None:
        names = list(self._providers)
        listed = await asyncio.gather(*(self._list(name) for name in names))
        products: dict[str, Product] = {}
        for name, found in zip(names, listed, strict=True):
            if found is None:
                # Keep offering what we knew: one provider's outage must not empty the modal.
                products.update({k: p for k, p in self._products.items() if p.provider == name})
            else:
                products.update((p.key, p) for p in found)
        self._products = products
        self._loaded_at = time.monotonic()

    async def _list(self, name: str) -> list[Product] | None:
        try:
            async with asyncio.timeout(self._load_timeout):
                return await self._providers[name].list_products()
        except ProviderError as exc:
            log.warning("could not load the %s catalog: %s", name, exc.message)
        except TimeoutError:
            log.warning("the %s catalog did not load within %ss", name, self._load_timeout)
        return None
