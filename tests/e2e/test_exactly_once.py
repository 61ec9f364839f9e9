"""Exactly-once beyond one healthy process: the real bot against the emulator and the vendor
fakes, when a clock steps, a heartbeat cannot be written, an answer is lost and the replay
refused, the bot restarts a day later, orders stay pending, or a button is forged."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy.exc import OperationalError

from bot.domain import RELEASES_BUDGET, Status
from bot.offline.emulator import SlackEmulator
from bot.slack.ids import APPROVE_ACTION, CHECK_AGAIN_ACTION, ORDER_AGAIN_ACTION, RESOLVE_ACTION
from providers.base import OrderRequest, OrderResult, SendLog
from providers.errors import OutcomeUnknown
from providers.sandbox import SandboxProvider
from tests.fakes import Tripwire
from tests.fakes.cardpluspay import standard_state
from tests.fakes.giftronaut import GiftronautState
from tests.slack_stack import ARJUN, GOOD_VALUES, JANE, Stack
from tests.support import Handler, bot_with, cardpluspay_adapter, giftronaut_adapter

GIFTRONAUT_CARD = {**GOOD_VALUES, "card": "giftronaut:branded:10042", "amount": "50"}
CARDPLUSPAY_CARD = {**GOOD_VALUES, "card": "cardpluspay:GOOGLE-5USD-KOXx", "amount": "5"}


def _delivery_dms(stack: Stack, recipient: str = JANE) -> list[int]:
    """The request ids of the delivery DMs the recipient got (one per delivery)."""
    return [
        int(m.metadata["event_payload"]["request_id"])
        for m in stack.ws.dm_messages(recipient)
        if m.metadata and m.metadata.get("event_type") == "rewardbot_delivery"
    ]


async def _approve(stack: Stack, values: dict[str, str]) -> None:
    """Request a reward and have Arjun approve it from its card."""
    await stack.request_reward(values)
    number = len(await stack.runtime.store.requests_in(frozenset(Status)))

    def card() -> Any:
        return next(
            (
                m
                for m in stack.ws.dm_messages(ARJUN)
                if f"approve reward #{number}:" in m.text and APPROVE_ACTION in _actions(m)
            ),
            None,
        )

    # Eight orders polled every 50 ms keep the runner busy: the card may take a while here.
    await stack.click(ARJUN, await stack.emulator.wait_for(card, 15, "the card"), APPROVE_ACTION)


async def test_a_clock_step_while_an_order_is_pending_delivers_once(
    emulator: SlackEmulator, database: str, step_clock: Callable[[float], None]
) -> None:
    """Symptom 1: the wall clock steps forward 2 minutes while the order is pending; the
    claim loop must not start the same job a second time (two delivery DMs on main)."""
    sandbox = SandboxProvider(completion_delay=2.0)
    async with bot_with(emulator, database, {"sandbox": sandbox}) as stack:
        await _approve(stack, GOOD_VALUES)
        await stack.emulator.wait_for(lambda: sandbox.order_count == 1, 5, "the order to be placed")
        step_clock(120)
        await stack.wait_status(1, Status.FULFILLED, seconds=10)
        step_clock(0)
        await asyncio.sleep(0.5)  # a second run, if any, would deliver now
        assert _delivery_dms(stack) == [1]
        assert sandbox.order_count == 1


async def test_a_heartbeat_that_cannot_be_written_never_buys_a_card_twice(
    emulator: SlackEmulator, database: str
) -> None:
    """Symptom 2: while CardPlusPay's ``POST /orders`` is in flight the heartbeat fails (the
    database is locked, or its server is gone): the purchase must not be cut off and sent
    again."""
    fake = standard_state()
    locked = False

    @web.middleware
    async def slow_purchase(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal locked
        if (request.method, request.path) == ("POST", "/v1/orders") and not fake.orders:
            locked = True  # every heartbeat during the purchase fails
            await asyncio.sleep(0.6)
            locked = False
        return await handler(request)

    async with (
        cardpluspay_adapter(fake, slow_purchase) as adapter,
        bot_with(emulator, database, {"cardpluspay": adapter}, job_lease_seconds=0.3) as stack,
    ):
        runtime = stack.runtime
        extend = runtime.store.extend_lease

        async def flaky_extend(*args: Any) -> bool:
            if locked:
                raise OperationalError("UPDATE jobs", None, TimeoutError("database is locked"))
            return await extend(*args)

        runtime.store.extend_lease = flaky_extend  # type: ignore[method-assign]
        await _approve(stack, CARDPLUSPAY_CARD)
        await stack.wait_status(1, Status.FULFILLED, seconds=10)
        await asyncio.sleep(0.5)
    assert len(fake.orders) == 1
    assert _delivery_dms(stack) == [1]


async def test_a_refused_replay_after_a_lost_answer_parks_the_reward_for_review(
    emulator: SlackEmulator, database: str
) -> None:
    """Symptom 3: Giftronaut creates the order, the answer is lost, the identical replay is
    refused (403): the reward must stay unknown (review, budget kept), never fail."""
    state, tripwire = GiftronautState(), Tripwire()

    async def then_refuse() -> None:
        state.fail_next_with(403, "FORBIDDEN", times=5)

    tripwire.arm("POST", "/api/v1/orders/", then_refuse, after=True)
    async with (
        giftronaut_adapter(state, tripwire.middleware) as giftronaut,
        bot_with(emulator, database, {"giftronaut": giftronaut}) as stack,
    ):
        state.drop_next_after_processing()
        await _approve(stack, GIFTRONAUT_CARD)
        await stack.wait_status(1, Status.NEEDS_REVIEW)
        request = await stack.runtime.store.get(1)
        assert request.status not in RELEASES_BUDGET  # its budget stays reserved
        assert request.failure_reason and "answer was lost" in request.failure_reason
        card = await _review_card(stack)
        actions = _actions(card)
        assert RESOLVE_ACTION in actions
        assert CHECK_AGAIN_ACTION not in actions  # no order id to look up
    assert len(state.created_orders) == 1


async def test_a_lost_answer_is_not_replayed_after_the_provider_forgot_the_key(
    emulator: SlackEmulator, database: str, step_clock: Callable[[float], None]
) -> None:
    """Symptom 4: Giftronaut's answer was lost, and the bot comes back more than 24 hours
    later (Giftronaut keeps keys for 24): replaying the key would buy a second card."""
    state, tripwire = GiftronautState(), Tripwire()

    async def then_fail() -> None:
        state.fail_next_with(500, "SERVER_ERROR", times=1000)  # every replay fails

    tripwire.arm("POST", "/api/v1/orders/", then_fail, after=True)
    async with giftronaut_adapter(state, tripwire.middleware) as giftronaut:
        async with bot_with(emulator, database, {"giftronaut": giftronaut}) as stack:
            state.drop_next_after_processing()
            await _approve(stack, GIFTRONAUT_CARD)
            await stack.emulator.wait_for(
                lambda: len(state.seen("POST", "/orders/branded-cards")) >= 3, 10, "replays"
            )
        state._failures.clear()  # Giftronaut is back
        state.advance(25 * 3600)
        step_clock(25 * 3600)
        async with bot_with(emulator, database, {"giftronaut": giftronaut}) as stack:
            await stack.wait_status(1, Status.NEEDS_REVIEW, seconds=10)
            reason = (await stack.runtime.store.get(1)).failure_reason or ""
            assert "too old to replay" in reason
    assert len(state.created_orders) == 1


@pytest.mark.exclusive("eight orders polled every 50 ms while a ninth waits its turn")
async def test_orders_waiting_on_the_provider_hold_no_slot(
    emulator: SlackEmulator, database: str
) -> None:
    """Symptom 5: eight orders stuck pending must not stop a ninth reward being ordered."""
    state = GiftronautState(polls_to_complete=10**9)
    async with (
        giftronaut_adapter(state) as giftronaut,
        bot_with(emulator, database, {"giftronaut": giftronaut}) as stack,
    ):
        for _ in range(8):
            await _approve(stack, GIFTRONAUT_CARD)
        await stack.emulator.wait_for(
            lambda: len(state.created_orders) == 8, 10, "eight pending orders"
        )
        state.polls_to_complete = 1
        await _approve(stack, GIFTRONAUT_CARD)
        await stack.wait_status(9, Status.FULFILLED, seconds=10)
        for request_id in range(1, 9):
            assert await stack.status(request_id) is Status.ORDERING


async def test_check_again_is_refused_on_a_request_without_an_order_id(
    emulator: SlackEmulator, database: str
) -> None:
    """Symptom 6: a hand-made *Check again* on a request parked without an order id must not
    re-send the order under its old key."""

    class Unsure(SandboxProvider):
        async def place_order(
            self, order: OrderRequest, sends: SendLog | None = None
        ) -> OrderResult:
            self.sent += 1
            raise OutcomeUnknown("The sandbox lost track of this order; check its dashboard.")

        sent = 0

    unsure = Unsure(completion_delay=0)
    async with bot_with(emulator, database, {"sandbox": unsure}) as stack:
        await _approve(stack, GOOD_VALUES)
        await stack.wait_status(1, Status.NEEDS_REVIEW)
        card = await _review_card(stack)
        _forge_button(card.blocks, ORDER_AGAIN_ACTION, CHECK_AGAIN_ACTION)
        await stack.click(ARJUN, card, CHECK_AGAIN_ACTION)
        await stack.emulator.wait_for(
            lambda: any("no sandbox order to check" in r for r in stack.refusals(ARJUN)),
            5,
            "the refusal",
        )
        await asyncio.sleep(0.3)
        assert await stack.status(1) is Status.NEEDS_REVIEW
        assert unsure.sent == 1


async def test_one_uncertain_cardpluspay_order_blocks_only_its_own_reward(
    emulator: SlackEmulator, database: str
) -> None:
    """Symptom 9: a lost CardPlusPay answer parks its reward; once a person has settled it,
    the next reward of the same card to the same person is ordered normally."""
    fake = standard_state()
    fake.show_email = False  # the order list cannot rule the first order in or out
    async with (
        cardpluspay_adapter(fake) as adapter,
        bot_with(emulator, database, {"cardpluspay": adapter}) as stack,
    ):
        fake.drop_next_after_processing()
        await _approve(stack, CARDPLUSPAY_CARD)
        await stack.wait_status(1, Status.NEEDS_REVIEW, seconds=10)
        await stack.click(ARJUN, await _review_card(stack), RESOLVE_ACTION)
        await stack.wait_status(1, Status.RESOLVED)

        await _approve(stack, {**CARDPLUSPAY_CARD, "message": "and again"})
        await stack.wait_status(2, Status.FULFILLED, seconds=10)
    assert len(fake.orders) == 2
    assert _delivery_dms(stack) == [2]


async def _review_card(stack: Stack) -> Any:
    """Arjun's card once it offers the review actions."""

    def reviewable() -> Any:
        card = stack.approval_card(ARJUN)
        return card if RESOLVE_ACTION in _actions(card) else None

    return await stack.emulator.wait_for(reviewable, 5, "the review buttons")


def _actions(message: Any) -> set[str]:
    return {
        element["action_id"]
        for block in message.blocks
        if block.get("type") == "actions"
        for element in block["elements"]
    }


def _forge_button(blocks: list[dict[str, Any]], shown: str, forged: str) -> None:
    """Turn the ``shown`` button into a ``forged`` one, as a stale or hand-made message would."""
    text = json.dumps(blocks).replace(f'"{shown}"', f'"{forged}"')
    blocks[:] = json.loads(text)
