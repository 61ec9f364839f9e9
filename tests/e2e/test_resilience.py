"""Edge cases that must not lose, duplicate or leak a reward."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import aiohttp
import pytest

from bot.domain import Status
from bot.offline.emulator import SlackEmulator
from bot.offline.local import running_bot
from bot.slack.ids import APPROVE_ACTION, CHECK_AGAIN_ACTION, ORDER_AGAIN_ACTION, RESOLVE_ACTION
from providers.base import OrderRequest, OrderResult, Product, SendLog
from providers.errors import InvalidProduct, OutcomeUnknown
from providers.sandbox import SandboxProvider
from tests.slack_stack import (
    APPROVERS,
    ARJUN,
    GOOD_VALUES,
    JANE,
    LIN,
    MAYA,
    OMAR,
    TEAM,
    Stack,
    sandbox_stack,
)


async def test_an_approver_who_is_the_recipient_gets_no_card_and_cannot_decide(
    stack: Stack,
) -> None:
    await stack.request_reward({**GOOD_VALUES, "recipient": ARJUN})
    await stack.emulator.wait_for(lambda: stack.ws.dm_messages(LIN), 5, "Lin's card")
    assert not [m for m in stack.ws.dm_messages(ARJUN) if "asks you to approve" in m.text]
    # Arjun forges a click naming the request from a card for another request.
    await stack.request_reward(GOOD_VALUES)
    await stack.emulator.wait_for(lambda: stack.ws.dm_messages(ARJUN), 5, "Arjun's card")
    await stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION, value="1")
    await stack.emulator.wait_for(lambda: stack.ws.ephemerals(ARJUN), 5, "the refusal")
    assert "a reward that is for you" in stack.ws.ephemerals(ARJUN)[0].text
    assert (await stack.runtime.store.get(1)).status is Status.PENDING_APPROVAL


async def test_recipient_who_is_the_only_other_approver_is_refused(
    emulator: SlackEmulator, database: str
) -> None:
    async with sandbox_stack(emulator, database, SandboxProvider(), [ARJUN]) as stack:
        await stack.request_reward({**GOOD_VALUES, "recipient": ARJUN})
        assert "nobody could approve" in emulator.workspace.view_errors(MAYA)["recipient"]


async def test_slackbot_cannot_be_rewarded(stack: Stack) -> None:
    await stack.request_reward({**GOOD_VALUES, "recipient": "USLACKBOT"})
    assert "Bots cannot receive rewards" in stack.ws.view_errors(MAYA)["recipient"]


@pytest.mark.parametrize(("message", "shortened"), [("&<>" * 333, True), ("hi\n" * 333, False)])
async def test_the_longest_messages_still_post_and_reach_approvers(
    stack: Stack, message: str, shortened: bool
) -> None:
    await stack.request_reward({**GOOD_VALUES, "message": message})
    summary = await stack.emulator.wait_for_message(TEAM, "Reward #1")
    assert ("…" in str(summary.blocks)) is shortened
    await stack.emulator.wait_for(lambda: stack.ws.dm_messages(ARJUN), 5, "the card")
    assert (await stack.runtime.store.get(1)).message == message.strip()


async def test_slack_rate_limits_are_waited_out(stack: Stack) -> None:
    stack.emulator.fail_next("chat.postMessage", status=429, retry_after=1)
    await stack.request_reward(GOOD_VALUES)
    await stack.emulator.wait_for_message(TEAM, "Reward #1")
    limited = [c for c in stack.emulator.calls_to("chat.postMessage") if not c.ok]
    assert len(limited) == 1


class _ForgetfulSandbox(SandboxProvider):
    """Accepts orders, then denies knowing them (until ``forgetful`` is switched off)."""

    forgetful = True

    async def get_order(self, provider_order_id: str) -> OrderResult:
        if self.forgetful:
            raise InvalidProduct(f"No order {provider_order_id}.")
        return await super().get_order(provider_order_id)


async def test_an_accepted_order_the_provider_then_denies_is_parked_for_review(
    emulator: SlackEmulator, database: str
) -> None:
    forgetful = _ForgetfulSandbox(completion_delay=10)
    async with sandbox_stack(emulator, database, forgetful) as stack:
        await stack.request_and_approve()
        await emulator.wait_for_dm(MAYA, "needs a manual check")
        request = await stack.runtime.store.get(1)
        assert request.status is Status.NEEDS_REVIEW
        assert request.provider_order_id is not None
        assert request.provider_order_id in (request.failure_reason or "")
        thread = stack.ws.thread_replies(TEAM, stack.ws.messages(TEAM)[0].ts)
        assert "Needs review" in thread[-1].text
        assert not stack.ws.dm_messages(JANE)


class _HugeCatalog(SandboxProvider):
    async def list_products(self) -> list[Product]:
        return [
            Product(
                provider="sandbox",
                product_id=f"SBX-BRAND{i}-GBP",
                name=f"Brand {i}",
                currency="GBP",
                min_value=Decimal(5),
                max_value=Decimal(500),
            )
            for i in range(150)
        ] + await super().list_products()


async def test_a_large_catalog_is_searched_as_the_user_types(
    emulator: SlackEmulator, database: str
) -> None:
    huge = _HugeCatalog(completion_delay=0)
    async with running_bot(
        emulator, database=database, approvers=APPROVERS, providers={"sandbox": huge}
    ) as runtime:
        await emulator.driver.slash_command(MAYA, TEAM)
        view = await emulator.wait_for(lambda: emulator.workspace.current_view(MAYA), 5, "modal")
        card = next(b for b in view["blocks"] if b["block_id"] == "card")["element"]
        assert card["type"] == "external_select"
        assert len((await emulator.driver.load_options(MAYA, "value", "brand"))["options"]) == 100
        answer = await emulator.driver.load_options(MAYA, "value", "books gbp")
        assert [o["value"] for o in answer["options"]] == ["sandbox:SBX-BOOKS-GBP"]
        await emulator.driver.submit_view(MAYA, {**GOOD_VALUES, "card": "sandbox:SBX-BOOKS-GBP"})
        await emulator.wait_for_message(TEAM, "Reward #1")
        assert (await runtime.store.get(1)).product_id == "SBX-BOOKS-GBP"


async def test_webhooks_for_unknown_or_webhookless_providers_are_refused(stack: Stack) -> None:
    base = stack.emulator.driver.delivery.request_url.removesuffix("/slack/events")  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/webhooks/nope", data=b"{}") as response:
            assert response.status == 404
        async with session.post(f"{base}/webhooks/sandbox", data=b"{}") as response:
            assert response.status == 400


@asynccontextmanager
async def _parked_for_review(
    emulator: SlackEmulator, database: str, provider: _ForgetfulSandbox
) -> AsyncIterator[Stack]:
    async with sandbox_stack(emulator, database, provider) as stack:
        await stack.request_and_approve()
        await emulator.wait_for(
            lambda: any(RESOLVE_ACTION in str(m.blocks) for m in stack.ws.dm_messages(LIN)),
            5,
            "review buttons on the cards",
        )
        yield stack


async def test_an_approver_can_mark_a_reviewed_request_resolved(
    emulator: SlackEmulator, database: str
) -> None:
    async with _parked_for_review(
        emulator, database, _ForgetfulSandbox(completion_delay=10)
    ) as stack:
        card = stack.approval_card(LIN)
        copy = stack.ws.post(stack.ws.resolve_channel(TEAM), OMAR, card.text, card.blocks, None)  # type: ignore[arg-type]
        await stack.click(OMAR, copy, RESOLVE_ACTION)  # not an approver
        await stack.emulator.wait_for(lambda: stack.ws.ephemerals(OMAR), 5, "the refusal")
        assert (await stack.runtime.store.get(1)).status is Status.NEEDS_REVIEW

        await stack.click(LIN, card, RESOLVE_ACTION)
        await stack.emulator.wait_for_dm(MAYA, "settled by hand")
        request = await stack.runtime.store.get(1)
        assert request.status is Status.RESOLVED
        resolved = [
            e for e in await stack.runtime.store.events(1) if e.to_status is Status.RESOLVED
        ]
        assert [e.actor for e in resolved] == [LIN]
        assert RESOLVE_ACTION not in str(stack.approval_card(ARJUN).blocks)


async def test_check_again_after_review_delivers_the_existing_order(
    emulator: SlackEmulator, database: str
) -> None:
    provider = _ForgetfulSandbox(completion_delay=0.05)
    async with _parked_for_review(emulator, database, provider) as stack:
        card = stack.approval_card(ARJUN)
        assert ORDER_AGAIN_ACTION not in str(card.blocks)  # an order exists: never buy again
        first_key = (await stack.runtime.store.get(1)).idempotency_key
        provider.forgetful = False  # the provider found its order
        await stack.click(ARJUN, card, CHECK_AGAIN_ACTION)
        await stack.emulator.wait_for_dm(JANE, "sent you a reward")
        await stack.emulator.wait_for_dm(MAYA, "was delivered")
        request = await stack.runtime.store.get(1)
        assert request.status is Status.FULFILLED
        assert request.idempotency_key == first_key
        assert provider.order_count == 1


class _UnsureSandbox(SandboxProvider):
    """Cannot tell whether the first order went through (it did not)."""

    unsure = True

    async def place_order(self, order: OrderRequest, sends: SendLog | None = None) -> OrderResult:
        if self.unsure:
            raise OutcomeUnknown("The sandbox lost track of this order; check its dashboard.")
        return await super().place_order(order, sends)


async def test_order_again_after_review_uses_a_new_key_and_delivers(
    emulator: SlackEmulator, database: str
) -> None:
    provider = _UnsureSandbox(completion_delay=0.05)
    async with sandbox_stack(emulator, database, provider) as stack:
        await stack.request_and_approve()
        await emulator.wait_for(
            lambda: any(ORDER_AGAIN_ACTION in str(m.blocks) for m in stack.ws.dm_messages(LIN)),
            5,
            "review",
        )
        first_key = (await stack.runtime.store.get(1)).idempotency_key
        provider.unsure = False  # the reviewer checked: nothing was issued
        await stack.click(LIN, stack.approval_card(LIN), ORDER_AGAIN_ACTION)
        await emulator.wait_for_dm(JANE, "sent you a reward")
        await emulator.wait_for_dm(MAYA, "was delivered")
        request = await stack.runtime.store.get(1)
        assert request.status is Status.FULFILLED
        assert request.idempotency_key not in (None, first_key)
        assert provider.order_count == 1


async def test_a_slack_outage_delays_announcements_but_loses_none(stack: Stack) -> None:
    for _ in range(2):
        stack.emulator.fail_next("chat.postMessage", error="internal_error")
    await stack.request_reward(GOOD_VALUES)
    # The summary post fails twice; the queued notification is retried until Slack takes it.
    await stack.emulator.wait_for_message(TEAM, "Reward #1", timeout=15)
    await stack.emulator.wait_for(lambda: stack.ws.dm_messages(LIN), 10, "the cards")
    failed = [c for c in stack.emulator.calls_to("chat.postMessage") if not c.ok]
    assert len(failed) == 2
