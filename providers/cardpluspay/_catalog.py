"""CardPlusPay's catalog as products: one item code is one fixed face value."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from bot.domain import is_currency, minor_units
from providers.base import OrderRequest, Product
from providers.cardpluspay._errors import _DISPLAY
from providers.cardpluspay._json import _CatalogItem, _Pagination
from providers.errors import InvalidProduct, ProviderUnavailable
from providers.http import find_list

log = logging.getLogger(__name__)

_PER_PAGE = 100


def _catalog_shape(data: Any) -> dict[str, Any]:
    """The catalog answer's shape is undocumented: accept a list, or a list under a known key."""
    items = find_list(data, ("products", "items", "catalog", "data"))
    if items is not None:
        pagination = data.get("pagination") if isinstance(data, dict) else None
        return {"items": items, "pagination": pagination}
    raise ProviderUnavailable(f"{_DISPLAY} sent a catalog we could not read.")


def _last_page(pagination: _Pagination | None, count: int) -> bool:
    if count == 0:
        return True
    if pagination is None or pagination.current_page is None or pagination.last_page is None:
        return count < _PER_PAGE
    return pagination.current_page >= pagination.last_page


def _product(provider: str, raw: dict[str, Any]) -> Product | None:
    try:
        item = _CatalogItem.model_validate(raw)
    except ValidationError:
        log.warning("skipping a cardpluspay catalog item we could not read")
        return None
    code, currency, value = item.code, (item.currency or "").strip().upper(), item.value
    if (item.delivery_type or "").strip().upper() == "PHYSICAL":
        return None
    if not code or value is None or value <= 0 or not is_currency(currency):
        log.warning("skipping cardpluspay item %r: no code, face value or currency", code)
        return None
    step = Decimal(1).scaleb(-minor_units(currency))
    if value != value.quantize(step):
        log.warning("skipping cardpluspay item %r: face value %s %s", code, value, currency)
        return None
    return Product(
        provider=provider,
        product_id=code,
        name=(item.product_name or item.name or item.brand or code).strip()[:60],
        currency=currency,
        denominations=(value.quantize(step),),
    )


def _check_listed(items: list[_CatalogItem], order: OrderRequest) -> None:
    """Raise :class:`InvalidProduct` unless ``items`` lists the ordered item at its approved
    face value: never buy a card worth something else."""
    item = next((i for i in items if i.code == order.product_id), None)
    if item is None:
        raise InvalidProduct(f"CardPlusPay no longer offers {order.product_id}.")
    face = order.face_value
    currency = (item.currency or "").strip().upper()
    if item.value != face.amount or currency != face.currency:
        raise InvalidProduct(
            f"CardPlusPay's {order.product_id} is worth {item.value} {currency}, "
            f"not {face}: nothing was ordered."
        )
