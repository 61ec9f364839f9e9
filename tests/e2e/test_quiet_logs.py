"""No payload is ever logged: the whole flow at DEBUG, over HTTP and Socket Mode, a restart
included, and not one log line holds a link, a code or a PIN (a 4-digit one included)."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

import pytest
from pydantic import SecretStr

from bot.offline.emulator import SlackEmulator
from bot.offline.local import running_bot
from bot.slack.ids import APPROVE_ACTION, RESEND_ACTION
from providers.base import OrderResult, Redemption
from providers.sandbox import SandboxProvider
from tests.slack_stack import APPROVERS, ARJUN, GOOD_VALUES, JANE, Stack, redeem_urls
from tests.support import sql_rows


class CodeAndPin(SandboxProvider):
    """The sandbox, issuing a code and a 4-digit PIN with each link."""

    def _result(self, order_id: str, now: datetime) -> OrderResult:
        result = super()._result(order_id, now)
        if result.redemption is None:
            return result
        digest = hashlib.sha256(order_id.encode()).hexdigest()
        redemption = Redemption(
            url=result.redemption.url,
            code=SecretStr(f"CODE-{digest[:10].upper()}"),
            pin=SecretStr(str(int(digest[10:18], 16) % 9000 + 1000)),
        )
        return result.model_copy(update={"redemption": redemption})


def _card_texts(stack: Stack) -> str:
    return "\n".join(str(m.blocks) + m.text for m in stack.ws.dm_messages(JANE))


async def test_no_log_line_holds_a_secret_at_debug_in_either_mode_after_a_restart(
    emulator: SlackEmulator, database: str, transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = CodeAndPin(completion_delay=0.05)
    options = {"approvers": APPROVERS, "providers": {"sandbox": provider}}
    socket_mode = transport == "socket"
    async with running_bot(emulator, database=database, socket_mode=socket_mode, **options) as rt:
        stack = Stack(emulator, rt, provider)
        await stack.request_reward(GOOD_VALUES)
        await emulator.wait_for(lambda: stack.ws.dm_messages(ARJUN), 5, "the card")
        await stack.click(ARJUN, stack.approval_card(ARJUN), APPROVE_ACTION)
        delivery = await emulator.wait_for_dm(JANE, "sent you a reward")
        # The recipient's click carries the whole delivery DM back to the bot.
        await stack.click(JANE, delivery, "redeem")

    # Restarted: the secrets are no longer in the redactor's memory.
    async with running_bot(emulator, database=database, socket_mode=socket_mode, **options) as rt:
        stack = Stack(emulator, rt, provider)
        await stack.click(JANE, delivery, RESEND_ACTION)
        await emulator.wait_for(lambda: len(redeem_urls(stack.ws.dm_messages(JANE))) == 2, 5, "")

    [link, again] = redeem_urls(stack.ws.dm_messages(JANE))
    assert link == again
    redemption = (await provider.get_order(await _order_id(database))).redemption
    assert redemption is not None and redemption.code and redemption.pin
    code, pin = redemption.code.get_secret_value(), redemption.pin.get_secret_value()
    assert len(pin) == 4 and code in _card_texts(stack) and pin in _card_texts(stack)

    records = caplog.get_records("call")
    assert any(r.levelno == logging.DEBUG for r in records), "nothing at DEBUG: no proof"
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in records)
    for secret in (link, link.rsplit("/", 1)[-1], code):
        assert secret not in logged
    assert not [line for line in logged.splitlines() if f" {pin}" in line or f"{pin} " in line]


async def _order_id(database: str) -> str:
    [row] = await sql_rows(database, "SELECT provider_order_id FROM reward_requests")
    return str(row["provider_order_id"])
