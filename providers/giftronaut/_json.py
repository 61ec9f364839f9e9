"""Giftronaut's JSON answers, read leniently; private to the adapter (see ``VendorModel``)."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)

from providers.vendor_json import VendorModel

log = logging.getLogger(__name__)


def _as_str(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


_Id = Annotated[str, BeforeValidator(_as_str), Field(min_length=1, max_length=200)]


def _unwrap(value: object, keys: tuple[str, ...]) -> object:
    if isinstance(value, dict):
        for key in keys:
            if key in value and isinstance(value[key], dict | list):
                return value[key]
    return value


class _Token(VendorModel):
    access_token: SecretStr
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int = Field(gt=0)

    @field_validator("token_type")
    @classmethod
    def _bearer(cls, value: str) -> str:
        if value.lower() != "bearer":
            raise ValueError("not a bearer token")
        return value


def _unread_if_unreadable(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """An undocumented field we would like but can do without: read it, or leave it unread
    (logged). Only ``orderId`` and ``status`` may make a placed order unreadable."""
    try:
        return handler(value)
    except ValidationError:
        log.warning("giftronaut: an order field in an unexpected shape was left unread")
        return None


class _Cost(VendorModel):
    amount: Decimal
    currency: str


class _OrderRecipient(VendorModel):
    # ``rewardLink`` is deliberately not a field: the link must not enter the bot at all.
    email: Annotated[str | None, WrapValidator(_unread_if_unreadable)] = None


class _Order(VendorModel):
    order_id: _Id = Field(validation_alias=AliasChoices("orderId", "id"))
    status: str
    total_cost: Annotated[_Cost | None, WrapValidator(_unread_if_unreadable)] = Field(
        default=None, validation_alias="totalCost"
    )
    recipients: Annotated[
        list[Annotated[_OrderRecipient | None, WrapValidator(_unread_if_unreadable)]] | None,
        WrapValidator(_unread_if_unreadable),
    ] = None

    @model_validator(mode="before")
    @classmethod
    def _data_wrapper(cls, value: object) -> object:
        if isinstance(value, dict) and "orderId" not in value:
            return _unwrap(value, ("data", "order"))
        return value

    @property
    def emails(self) -> list[str]:
        """The addresses of the cards the order lists, as far as they could be read."""
        return [r.email for r in self.recipients or () if r is not None and r.email]


class _Resent(VendorModel):
    requeued: int

    @model_validator(mode="before")
    @classmethod
    def _data_wrapper(cls, value: object) -> object:
        if isinstance(value, dict) and "requeued" not in value:
            return _unwrap(value, ("data",))
        return value


_Amount = Annotated[Decimal, Field(gt=0)]


class _CatalogItem(VendorModel):
    product_id: _Id = Field(validation_alias=AliasChoices("productId", "id"))
    name: str | None = Field(
        default=None, validation_alias=AliasChoices("name", "brandName", "productName", "title")
    )
    currency: str | None = Field(
        default=None, validation_alias=AliasChoices("currency", "currencyCode")
    )
    prices: list[_Amount] | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "prices", "priceList", "pricePoints", "denominations", "amounts"
        ),
    )
    min_value: _Amount | None = Field(
        default=None, validation_alias=AliasChoices("minAmount", "minPrice", "minValue")
    )
    max_value: _Amount | None = Field(
        default=None, validation_alias=AliasChoices("maxAmount", "maxPrice", "maxValue")
    )
