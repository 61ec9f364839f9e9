"""Runa's JSON answers, read leniently; private to the adapter (see ``VendorModel``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import Field, field_validator

from providers.vendor_json import VendorModel

# The API version whose JSON these models read (sent as ``X-Api-Version``).
API_VERSION = "2024-02-05"


class _Error(VendorModel):
    type: str | None = None
    message: str | None = None


class _ValidationDetail(VendorModel):
    type: str | None = None
    message: str | None = None
    location: list[str] = Field(default_factory=list)

    @field_validator("location", mode="before")
    @classmethod
    def _strings(cls, value: object) -> object:
        return [str(v) for v in value] if isinstance(value, list) else value


class _ValidationError(_Error):
    details: list[_ValidationDetail] = Field(default_factory=list)


class _Cursors(VendorModel):
    after: str | None = None


class _Pagination(VendorModel):
    cursors: _Cursors = _Cursors()


class _Denominations(VendorModel):
    type: str
    minimum_value: Decimal | None = None
    maximum_value: Decimal | None = None
    available_list: list[Decimal] | None = None


class _GiftCard(VendorModel):
    denominations: _Denominations | None = None


class _Product(VendorModel):
    code: str
    name: str
    currency: str
    is_orderable: bool = False
    payout_type: str | None = None
    gift_card: _GiftCard | None = None


class _Catalog(VendorModel):
    catalog: list[dict[str, Any]] = Field(default_factory=list)
    pagination: _Pagination | None = None


class _Payout(VendorModel):
    status: str | None = None
    url: str | None = None


class _Item(VendorModel):
    id: str | None = None
    face_value: Decimal | None = None
    payout: _Payout | None = None


class _Order(VendorModel):
    """Every order shape in one: accepted, incomplete, completed (basic or full details)."""

    id: str
    status: str
    message: str | None = None
    description: str | None = None
    currency: str | None = None
    total_price: Decimal | None = None
    items: list[_Item] | None = None
    metadata: dict[str, Any] | None = None


class _OrderPage(VendorModel):
    items: list[_Order] = Field(default_factory=list)
    pagination: _Pagination | None = None


class _WebhookBody(VendorModel):
    id: str | None = None
    status: str | None = None
