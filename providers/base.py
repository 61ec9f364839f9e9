"""What every gift-card provider adapter offers the bot, in domain terms.

Adapters return these models, never vendor JSON; vendor response models stay private to their
module. Errors are raised from the taxonomy in :mod:`providers.errors`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from bot.domain import CurrencyCode, Money


class Product(BaseModel):
    """A card type a manager can pick, with the face values the provider accepts for it."""

    model_config = ConfigDict(frozen=True)

    provider: str
    product_id: str
    name: str
    currency: CurrencyCode
    # Either a list of fixed face values, or a min/max range (inclusive).
    denominations: tuple[Decimal, ...] = ()
    min_value: Decimal | None = None
    max_value: Decimal | None = None

    @model_validator(mode="after")
    def _one_kind_of_denomination(self) -> Product:
        ranged = self.min_value is not None and self.max_value is not None
        if bool(self.denominations) == ranged:
            raise ValueError("a product has either fixed denominations or a min/max range")
        return self

    @property
    def key(self) -> str:
        """Stable identifier across providers, used as the select option value."""
        return f"{self.provider}:{self.product_id}"

    def allows(self, amount: Decimal) -> bool:
        if self.denominations:
            return amount in self.denominations
        assert self.min_value is not None and self.max_value is not None
        return self.min_value <= amount <= self.max_value

    def describe_allowed(self) -> str:
        """The allowed face values, as a person would say them."""
        if self.denominations:
            values = ", ".join(
                str(Money(amount=d, currency=self.currency).amount) for d in self.denominations
            )
            return f"{values} {self.currency}"
        return f"{self.min_value} to {self.max_value} {self.currency}"


class OrderRequest(BaseModel):
    """One gift card to buy. The same ``idempotency_key`` must always carry the same body."""

    model_config = ConfigDict(frozen=True)

    idempotency_key: str
    product_id: str
    face_value: Money
    reference: str


class OrderState(StrEnum):
    """The provider's view of an order."""

    # Accepted but not yet issued: poll ``get_order`` until it settles.
    PENDING = "pending"
    # Issued; the redemption link is available.
    COMPLETED = "completed"
    # The provider gave up on it; nothing was issued.
    FAILED = "failed"


class OrderResult(BaseModel):
    """The provider's answer about an order."""

    model_config = ConfigDict(frozen=True)

    provider_order_id: str
    state: OrderState
    redemption_url: SecretStr | None = None
    charged: Money | None = None
    failure_reason: str | None = None


class Provider(ABC):
    """A gift-card provider. Implementations must be safe to call concurrently."""

    name: ClassVar[str]
    # Seconds between ``get_order`` polls while an order is pending.
    poll_interval: float = 2.0

    @abstractmethod
    async def list_products(self) -> list[Product]:
        """The provider's catalog."""

    @abstractmethod
    async def place_order(self, order: OrderRequest) -> OrderResult:
        """Place (or, for a key seen before, replay) an order."""

    @abstractmethod
    async def get_order(self, provider_order_id: str) -> OrderResult:
        """The current state of an order placed earlier."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Release connections; the default holds none."""
