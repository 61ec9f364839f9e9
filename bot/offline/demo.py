"""``rewardbot demo``: a real reward, end to end, with no Slack workspace and no credentials.

The built-in Slack emulator plays Slack, the sandbox plays the gift-card provider, and a
temporary SQLite database holds the state. Every step goes through the bot's real HTTP endpoint
with signed requests; what each person would see in Slack is printed as it happens.
"""

from __future__ import annotations

import re
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from bot.offline.emulator import SlackEmulator, Workspace
from bot.offline.emulator.workspace import Message
from bot.offline.local import running_bot
from bot.runtime import Runtime
from bot.slack.ids import APPROVE_ACTION, REJECT_ACTION
from providers.sandbox import SandboxProvider

_PEOPLE = {"U0MAYA": "maya", "U0ARJUN": "arjun", "U0LIN": "lin", "U0JANE": "jane"}
_TEAM = "C0TEAMWINS"
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def _workspace() -> Workspace:
    ws = Workspace()
    for user_id, name in _PEOPLE.items():
        ws.add_user(user_id, name=name)
    ws.add_channel(_TEAM, name="team-wins", members=list(_PEOPLE))
    return ws


def _readable(mrkdwn: str) -> str:
    text = _MENTION.sub(lambda m: "@" + _PEOPLE.get(m.group(1), m.group(1)), mrkdwn)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _render_blocks(blocks: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for block in blocks:
        if block["type"] == "header":
            lines.append(f"== {block['text']['text']} ==")
        elif block["type"] == "divider":
            lines.append("────")
        elif block["type"] == "section":
            lines += _readable(block["text"]["text"]).splitlines()
        elif block["type"] == "context":
            for element in block["elements"]:
                lines += _readable(element["text"]).splitlines()
        elif block["type"] == "actions":
            link_note = " ↗ (link shown to this person only)"
            buttons = [
                f"[{b['text']['text']}{link_note if 'url' in b else ''}]" for b in block["elements"]
            ]
            lines.append(" ".join(buttons))
    return lines


def _show(title: str, message: Message) -> None:
    print(f"   {title}")
    lines = _render_blocks(message.blocks) if message.blocks else [_readable(message.text)]
    for line in lines:
        print(textwrap.indent(line, "   │ "))


def _say(step: str) -> None:
    print()
    print(step)


async def run_demo() -> int:
    sandbox = SandboxProvider(completion_delay=0.5)
    with tempfile.TemporaryDirectory(prefix="rewardbot-demo-") as tmp:
        async with (
            SlackEmulator(_workspace()) as emulator,
            running_bot(
                emulator,
                database=Path(tmp) / "rewardbot.db",
                approvers=["U0ARJUN", "U0LIN"],
                providers={"sandbox": sandbox},
            ) as runtime,
        ):
            print("rewardbot demo: the real bot, the built-in Slack emulator, the sandbox provider")
            print("Workspace: #team-wins with @maya (manager), @arjun and @lin (approvers), @jane.")
            await _maya_opens_the_modal(emulator)
            summary = await _maya_requests_approval(emulator)
            card = await _approvers_get_cards(emulator)
            await _arjun_approves_and_jane_gets_the_card(emulator, card, summary)
            await _lin_rejects_a_second_request(emulator)
            await _maya_asks_for_status(emulator)
            await _show_audit_trail(runtime, sandbox)
    return 0


async def _maya_opens_the_modal(emulator: SlackEmulator) -> None:
    _say("1. @maya types in #team-wins:  /reward @jane 25 for shipping the release")
    await emulator.driver.slash_command(
        "U0MAYA", _TEAM, text="<@U0JANE|jane> 25 for shipping the release"
    )
    view = await emulator.wait_for(
        lambda: emulator.workspace.current_view("U0MAYA"), 5, "the modal"
    )
    print(f'   The bot opens the "{view["title"]["text"]}" modal for @maya, prefilled:')
    for block in view["blocks"]:
        element = block["element"]
        if "initial_user" in element:
            shown = _readable(f"<@{element['initial_user']}>")
        elif element["type"] == "datetimepicker":
            shown = "[date] [time] (empty: as soon as approved)"
        else:
            cards = f"choose from {len(element.get('options', []))} cards"
            shown = element.get("initial_value", cards)
        print(f"   │ {block['label']['text']}: {shown}")


async def _maya_requests_approval(emulator: SlackEmulator) -> Message:
    """Returns the request's summary in #team-wins."""
    _say('2. @maya picks "Sandbox Books" and clicks "Request approval".')
    await emulator.driver.submit_view("U0MAYA", {"card": "sandbox:SBX-BOOKS-GBP"})
    summary = await emulator.wait_for_message(_TEAM, "Reward #1")
    _show("#team-wins now shows the request (its thread carries the updates):", summary)
    confirmation = await emulator.wait_for(
        lambda: emulator.workspace.ephemerals("U0MAYA"), 5, "the confirmation"
    )
    print("   @maya alone sees, the moment the modal closes:")
    print(textwrap.indent(_readable(confirmation[-1].text), "   │ "))
    return summary


async def _approvers_get_cards(emulator: SlackEmulator) -> Message:
    """Returns @arjun's approval card."""
    _say("3. Each approver gets a private card.")
    card = await emulator.wait_for_dm("U0ARJUN", "asks you to approve")
    _show("@arjun's DM from rewardbot:", card)
    await emulator.driver.open_app_home("U0ARJUN")
    home = await emulator.wait_for(
        lambda: emulator.workspace.home_view("U0ARJUN"), 5, "the App Home"
    )
    print("   @arjun opens rewardbot's App Home tab (the same buttons work there):")
    for line in _render_blocks(home["blocks"]):
        print(textwrap.indent(line, "   │ "))
    return card


async def _arjun_approves_and_jane_gets_the_card(
    emulator: SlackEmulator, card: Message, summary: Message
) -> None:
    ws = emulator.workspace
    _say("4. @arjun clicks [Approve]. The bot orders the card from the sandbox provider,")
    print("   which completes it asynchronously, then delivers it.")
    await emulator.driver.click_button("U0ARJUN", card.channel, card.ts, APPROVE_ACTION)
    delivery = await emulator.wait_for_dm("U0JANE", "sent you a reward", timeout=10)
    _show("@jane's DM from rewardbot (the only place the redemption link appears):", delivery)
    await emulator.wait_for_dm("U0MAYA", "was delivered")
    _show("#team-wins, the request after delivery:", ws.find_message(_TEAM, summary.ts) or summary)
    print("   Thread replies:")
    for reply in ws.thread_replies(_TEAM, summary.ts):
        print(f"   │ ↳ {_readable(reply.text)}")
    _show("@maya's DM:", ws.dm_messages("U0MAYA")[-1])


async def _lin_rejects_a_second_request(emulator: SlackEmulator) -> None:
    ws, driver = emulator.workspace, emulator.driver
    _say("5. A second request, rejected with a reason.")
    await driver.slash_command("U0MAYA", _TEAM, text="<@U0JANE|jane> 25 for the demo")
    await emulator.wait_for(lambda: ws.current_view("U0MAYA"), 5, "the modal")
    await driver.submit_view("U0MAYA", {"card": "sandbox:SBX-COFFEE-USD"})
    lin_card = await emulator.wait_for_dm("U0LIN", "reward #2")
    await driver.click_button("U0LIN", lin_card.channel, lin_card.ts, REJECT_ACTION)
    await emulator.wait_for(lambda: ws.current_view("U0LIN"), 5, "the reject modal")
    print('   @lin clicks [Reject] and gives a reason: "Already rewarded this month"')
    await driver.submit_view("U0LIN", {"reason": "Already rewarded this month"})
    _show("@maya's DM:", await emulator.wait_for_dm("U0MAYA", "was rejected"))


async def _maya_asks_for_status(emulator: SlackEmulator) -> None:
    _say("6. @maya types:  /reward status")
    await emulator.driver.slash_command("U0MAYA", _TEAM, text="status")
    status = await emulator.wait_for(
        lambda: [e for e in emulator.workspace.ephemerals("U0MAYA") if "recent reward" in e.text],
        5,
        "the status answer",
    )
    print("   Only @maya sees the answer:")
    print(textwrap.indent(_readable(status[-1].text), "   │ "))


async def _show_audit_trail(runtime: Runtime, sandbox: SandboxProvider) -> None:
    _say("7. The audit trail of request #1, from the database:")
    for event in await runtime.store.events(1):
        change = f"{event.from_status or '·'} → {event.to_status}" if event.to_status else ""
        print(
            f"   {event.at:%H:%M:%S} {event.kind:<16} {change:<36} by "
            f"{_PEOPLE.get(event.actor, event.actor)}"
        )
    request = await runtime.store.get(1)
    print(
        f"\nDone: request #1 is {request.status}, face value {request.face_value}, "
        f"charged {request.charged}; {sandbox.order_count} order placed."
    )
    print(
        "Try failures with the sandbox's magic amounts: 10.91 declined, 10.92 out of "
        "stock, 10.93 insufficient funds, 10.94 fails after acceptance."
    )
