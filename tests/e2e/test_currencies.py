"""Amounts in the card's own currency: as many decimals as ISO 4217 gives it, never more."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bot.domain import Status
from bot.offline.emulator import SlackEmulator
from bot.reports import export_requests
from bot.slack.ids import APPROVE_ACTION
from providers.base import Product
from providers.sandbox import SandboxProvider
from tests.slack_stack import ARJUN, GOOD_VALUES, MAYA, TEAM, Stack, sandbox_stack
from tests.support import all_requests, sql_execute, sql_rows, submit_request

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
    emulator: SlackEmulator, database: str
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


# The Croatian kuna, withdrawn from ISO 4217 when Croatia took the euro in 2023.
KUNA = Product.model_construct(
    provider=SandboxProvider.name,
    product_id="SBX-KUNA",
    name="Sandbox Kuna",
    currency="HRK",
    denominations=(),
    min_value=Decimal(1),
    max_value=Decimal(1000),
)


class SandboxWith(SandboxProvider):
    """The sandbox, with a catalog that (wrongly) lets through a card in a code that is not
    money today."""

    def __init__(self, product: Product) -> None:
        super().__init__(0.1)
        self._extra = product

    async def list_products(self) -> list[Product]:
        return [*await super().list_products(), self._extra]


async def _answer(stack: Stack, user: str, text: str) -> str:
    """Run ``/reward <text>`` and return the private answer it produced."""
    before = len(stack.ws.ephemerals(user))
    await stack.emulator.driver.slash_command(user, TEAM, text=text)
    await stack.emulator.wait_for(
        lambda: len(stack.ws.ephemerals(user)) > before, 5, f"the answer to /reward {text}"
    )
    return stack.ws.ephemerals(user)[-1].text


async def test_a_stored_request_in_a_withdrawn_currency_loads_shows_exports_and_runs_its_jobs(
    emulator: SlackEmulator, database: str
) -> None:
    """Stored in HRK while it was money: the table withdrew it since, and the request must
    still load, render, export and go through its jobs (with two decimal places)."""
    async with sandbox_stack(emulator, database, SandboxProvider(0.1)) as stack:
        request_id = await submit_request(stack)
        await sql_execute(
            database,
            "UPDATE reward_requests SET currency = 'HRK', amount = '187.5' WHERE id = :id",
            id=request_id,
        )
        stored = await stack.runtime.store.get(request_id)
        assert str(stored.face_value) == "187.50 HRK"
        assert "187.50 HRK" in await _answer(stack, MAYA, "status")
        assert "187.50 HRK" in await _answer(stack, MAYA, f"status #{request_id}")

        await stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION)
        # Its fulfil job runs to an outcome: the sandbox no longer sells in kuna, as a vendor
        # would refuse it too, and the requester is told in the currency it was asked in.
        await stack.wait_status(request_id, Status.FAILED)
        failed = await stack.runtime.store.get(request_id)
        assert failed.failure_reason and "sandbox refused the order" in failed.failure_reason
        await stack.emulator.wait_for(
            lambda: any("(187.50 HRK) failed" in m.text for m in stack.ws.dm_messages(MAYA)),
            5,
            "the requester to be told",
        )

        async def jobs_done() -> bool:
            return await stack.runtime.store.due_jobs_by_kind() == {}

        await stack.emulator.wait_for(jobs_done, 5, "every job of the request to finish")
        failed_jobs = "SELECT kind, last_error FROM jobs WHERE last_error IS NOT NULL"
        assert await sql_rows(database, failed_jobs) == []

        since, until = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
        exported = json.loads(await export_requests(stack.runtime.store, since, until, "json"))
        assert [(r["amount"], r["currency"]) for r in exported] == [("187.5", "HRK")]
        assert "HRK" in await export_requests(stack.runtime.store, since, until, "csv")


@pytest.mark.parametrize("code", ["HRK", "USS"])
async def test_the_form_refuses_a_withdrawn_or_made_up_code_even_if_a_catalog_offers_it(
    emulator: SlackEmulator, database: str, code: str
) -> None:
    """New requests are input: strict, whatever a catalog let through."""
    product = KUNA.model_copy(update={"currency": code})
    async with sandbox_stack(emulator, database, SandboxWith(product)) as stack:
        await stack.request_reward({**GOOD_VALUES, "card": f"sandbox:{product.product_id}"})
        error = stack.ws.view_errors(MAYA)["amount"]
        assert f"{code!r} is not an ISO 4217 currency code" in error
        assert await all_requests(stack) == []
