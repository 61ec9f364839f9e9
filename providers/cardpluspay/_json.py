"""CardPlusPay's JSON answers, read leniently; private to the adapter (see ``VendorModel``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import Field, SecretStr, field_validator

from providers.vendor_json import VendorModel


class _Envelope(VendorModel):
    success: bool
    message: str = ""
    data: Any = None


class _Pagination(VendorModel):
    total: int | None = None
    per_page: int | None = None
    current_page: int | None = None
    last_page: int | None = None


class _CatalogItem(VendorModel):
    item_code: str | None = None
    item_id: str | None = None
    product_name: str | None = None
    name: str | None = None
    brand: str | None = None
    value: Decimal | None = None
    price: Decimal | None = None
    currency: str | None = None
    delivery_type: str | None = None

    @property
    def code(self) -> str | None:
        return self.item_code or self.item_id


class _CatalogPage(VendorModel):
    items: list[dict[str, Any]] = Field(default_factory=list)
    pagination: _Pagination | None = None


class _Check(VendorModel):
    price: Decimal | None = None
    state: str | None = None
    status: bool | None = None

    @property
    def in_stock(self) -> bool:
        """``state`` says so, or (without a ``state``) ``status`` does; a false ``status``
        always means no."""
        in_stock = self.state == "in_stock" or (self.state is None and self.status is True)
        return in_stock and self.status is not False


def _flatten_metadata(value: Any) -> Any:
    """``[{"Pin": "123"}]`` (the documented shape) or ``{"Pin": "123"}`` → one dict."""
    if value is None:
        return {}
    entries = value if isinstance(value, list) else [value]
    merged: dict[str, str] = {}
    for entry in entries:
        if isinstance(entry, dict):
            merged.update({str(k): str(v) for k, v in entry.items() if v is not None})
    return merged


class _Code(VendorModel):
    code: SecretStr | None = None
    pin: SecretStr | None = None
    url: SecretStr | None = None
    redemption_url: SecretStr | None = None
    redeem_url: SecretStr | None = None
    metadata: dict[str, SecretStr] = Field(default_factory=dict)
    status: str | None = None
    currency: str | None = None
    item_code: str | None = None
    denomination: Decimal | None = None
    denomination_unit: str | None = None
    charged_amount: Decimal | None = None

    @field_validator("metadata", mode="before")
    @classmethod
    def _flat(cls, value: Any) -> Any:
        return _flatten_metadata(value)

    @field_validator("code", "pin", "url", "redemption_url", "redeem_url", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return str(value)

    def meta(self, keys: frozenset[str]) -> SecretStr | None:
        for key, value in self.metadata.items():
            if key.strip().lower() in keys and value.get_secret_value().strip():
                return value
        return None


class _Order(VendorModel):
    order_id: int
    order_no: str | None = None
    status: str | None = None
    codes: list[_Code] = Field(default_factory=list)
    amount: Decimal | None = None
    created_at: str | None = None
    email: str | None = None
    item_code: str | None = None
    item_id: str | None = None
    total_denomination: Decimal | None = None
    denomination_unit: str | None = None

    @field_validator("created_at", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        return None if value is None else str(value)

    @property
    def label(self) -> str:
        return self.order_no or f"#{self.order_id}"


class _OrderList(VendorModel):
    orders: list[dict[str, Any]] = Field(default_factory=list)
    pagination: _Pagination | None = None
