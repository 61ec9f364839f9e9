"""Amounts in the card's own currency: as many decimals as ISO 4217 gives it, never more."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from bot.offline.emulator import SlackEmulator
from providers.base import Product
from providers.sandbox import SandboxProvider
from tests.slack_stack import GOOD_VALUES, MAYA, sandbox_stack
from tests.support import all_requests, submit_request

# The Ugandan shilling has no minor unit: an amount in it is a whole number.
AIRTIME = Product(
    provider=SandboxProvider.name,
    product_id="SBX-AIRTIME-UGX",
    name="Sandbox Airtime",
    currency="UGX",
    min_value=Decimal(5000),
    max_value=Decimal(500000),
)


class SandboxWithShillings(SandboxProvider):
    """The sandbox, also offering a card priced in a currency without decimals."""

    async def list_products(self) -> list[Product]:
        return [*await super().list_products(), AIRTIME]


async def test_an_amount_finer_than_the_currency_is_refused_on_the_amount_field(
    emulator: SlackEmulator, database: Path
) -> None:
    async with sandbox_stack(emulator, database, SandboxWithShillings(0.1)) as stack:
        card = f"sandbox:{AIRTIME.product_id}"
        await stack.request_reward({**GOOD_VALUES, "card": card, "amount": "25000.50"})

        error = stack.ws.view_errors(MAYA)["amount"]
        assert "UGX amounts have at most 0 decimal places" in error
        assert await all_requests(stack) == []

        request_id = await submit_request(stack, card=card, amount="25,000")
        stored = await stack.runtime.store.get(request_id)
        assert str(stored.face_value) == "25,000 UGX"
