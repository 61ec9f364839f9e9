"""Property-based fuzzing of what users can send the bot: the reward modal's submission, the
``/reward`` text and the Approve / Reject buttons.

Every input must either succeed or get a clear answer; none may crash a handler, go
unanswered, or leave a half-written request behind. Each test starts one real bot (signed HTTP
to the real handlers, the Slack emulator, the sandbox provider) and runs all its Hypothesis
examples against it, so every check compares the state after an example with the state
before it (stored requests, their statuses, messages, sandbox orders, logged errors).

Two bugs the fuzzer found (a 27-digit amount crashed the modal handler; any ``/reward`` text
containing "payload" went unanswered) are fixed and pinned by the plain tests below.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bot.domain import MESSAGE_MAX_CHARS, REASON_MAX_CHARS, RewardRequest, Status, parse_amount
from bot.offline.emulator import SlackEmulator
from bot.offline.emulator.workspace import Message
from bot.slack.ids import APPROVE_ACTION, REJECT_ACTION, REJECT_MODAL, REWARD_MODAL
from providers.sandbox import CATALOG, SandboxProvider
from tests.slack_stack import (
    APPROVERS,
    ARJUN,
    GONE,
    GOOD_VALUES,
    HELPER_BOT,
    JANE,
    LIN,
    MAYA,
    OMAR,
    QUIET,
    TEAM,
    Stack,
    sandbox_stack,
)

HUMANS = (MAYA, ARJUN, LIN, JANE, OMAR)


def approvers_for(requester: str, recipient: str, approvers: tuple[str, ...]) -> list[str]:
    """The oracle: with a flat approver list, anyone but the requester and recipient decides."""
    return [a for a in approvers if a not in (requester, recipient)]


INPUT_BLOCKS = frozenset(
    {"recipient", "more_recipients", "card", "amount", "message", "deliver_at"}
)
ALL_STATUSES = frozenset(Status)
# How long a visible outcome may take: the bot acks at once and works on after the ack.
OUTCOME_TIMEOUT = 3.0
# How long a failed example waits for its side effects to land, so the next one starts clean.
SETTLE = 0.5
DM = "the user's DM with the bot"


def fuzz_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,  # CI runs the same examples every time
        database=None,  # and writes no example database
        # One bot serves every example of a test: that is the point, not a mistake.
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


# -- shared helpers -----------------------------------------------------------------------------


def errors_since(caplog: pytest.LogCaptureFixture, mark: int) -> list[str]:
    """ERROR (or worse) records logged since ``mark``, from any logger: the bot's own, Bolt's
    (an exception escaping a listener) and aiohttp's (an exception escaping the endpoint)."""
    return [
        f"{r.name}: {r.getMessage()}" for r in caplog.records[mark:] if r.levelno >= logging.ERROR
    ]


async def stored(stack: Stack) -> list[RewardRequest]:
    return await stack.runtime.store.requests_in(ALL_STATUSES)


def message_count(stack: Stack) -> int:
    return sum(len(stack.ws.messages(c)) for c in list(stack.ws.channels))


async def open_reward_modal(
    stack: Stack, user: str, channel: str = TEAM, text: str = ""
) -> dict[str, Any] | None:
    """Type ``/reward text``; return the modal it opened (None if none opened in time)."""
    if stack.ws.current_view(user) is not None:
        await stack.emulator.driver.close_view(user)
    reply = await stack.emulator.driver.slash_command(user, channel, text=text)
    assert reply.responded, f"/reward {text!r} was not acknowledged in time: {reply}"
    try:
        view: dict[str, Any] = await stack.emulator.wait_for(
            lambda: stack.ws.current_view(user), OUTCOME_TIMEOUT, "the reward modal"
        )
    except TimeoutError:
        return None
    return view


async def wait_announced(stack: Stack, request: RewardRequest) -> None:
    """The summary (with its first thread reply) and every approver's card are posted."""

    async def summary_posted() -> RewardRequest | None:
        current = await stack.runtime.store.get(request.id)
        return current if current.summary_ts else None

    current: RewardRequest = await stack.emulator.wait_for(
        summary_posted, OUTCOME_TIMEOUT, f"the summary of #{request.id}"
    )
    assert current.summary_channel is not None and current.summary_ts is not None
    expected_channel = (
        request.origin_channel_id
        if request.origin_channel_id == TEAM
        else stack.ws.open_dm(request.requester_id).id
    )
    assert current.summary_channel == expected_channel
    summary = stack.ws.find_message(current.summary_channel, current.summary_ts)
    assert summary is not None and f"Reward #{request.id}:" in summary.text
    await stack.emulator.wait_for(
        lambda: stack.ws.thread_replies(current.summary_channel, current.summary_ts),
        OUTCOME_TIMEOUT,
        f"the first thread reply of #{request.id}",
    )
    for approver in approvers_for(request.requester_id, request.recipient_id, APPROVERS):
        await stack.emulator.wait_for(
            lambda a=approver: card_for(stack, a, request.id),
            OUTCOME_TIMEOUT,
            f"{approver}'s approval card for #{request.id}",
        )
    others = set(APPROVERS) - set(
        approvers_for(request.requester_id, request.recipient_id, APPROVERS)
    )
    for other in others:
        assert card_for(stack, other, request.id) is None, f"{other} may not decide #{request.id}"


def card_for(stack: Stack, approver: str, request_id: int) -> Message | None:
    needle = f"asks you to approve reward #{request_id}:"
    return next((m for m in stack.ws.dm_messages(approver) if needle in m.text), None)


class Fuzzed:
    """The bot every example of a test runs against, and what the examples left behind."""

    def __init__(self, stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
        self.stack = stack
        self.caplog = caplog
        self.requests = 0  # stored so far (modal test)
        self.messages = 0  # in the workspace so far (modal test)
        # The pending request of each shape and a copy of its approval card in #team-wins,
        # where anyone can click it, as if it had been forwarded there (button test).
        self.current: dict[int, tuple[int, Message]] = {}

    def __repr__(self) -> str:  # keeps Hypothesis' failure reports readable
        return "<one bot for all examples>"


@pytest.fixture
async def fuzzed(
    emulator: SlackEmulator,
    database: str,
    sandbox: SandboxProvider,
    caplog: pytest.LogCaptureFixture,
) -> AsyncIterator[Fuzzed]:
    # Hypothesis has the bot post hundreds of messages a minute in #team-wins, far more than
    # Slack would take; the emulator takes them all, and Slack's pace is not what this fuzzes.
    async with sandbox_stack(emulator, database, sandbox, slack_pacing=False) as stack:
        yield Fuzzed(stack, caplog)


# -- 1. the reward modal's submission -----------------------------------------------------------

CARD_KEYS = [p.key for p in CATALOG]

recipients = st.one_of(
    st.none(),
    st.sampled_from([*HUMANS, HELPER_BOT, GONE, "USLACKBOT", "UBOT", "U0NOBODY", "W0JANE", ""]),
    st.text(max_size=30),
)
cards = st.one_of(
    st.none(),
    st.sampled_from(
        [
            *CARD_KEYS,
            "",
            "sandbox:",
            ":",
            "sandbox:NOT-OFFERED",
            "SBX-BOOKS-GBP",
            "runa:SBX-BOOKS-GBP",
            "sandbox:sbx-books-gbp",
            "sandbox:SBX-BOOKS-GBP ",
        ]
    ),
    st.text(max_size=40),
)
amounts = st.one_of(
    st.none(),
    st.sampled_from(
        [
            *("", " ", "25", "£25", "25 GBP", "25gbp", "£ 25.00", "1,250.00", "10.91", "15"),
            *("5", "500", "500.00", "4.99", "500.01", "$10", "€20", "25.001", ".5", "25.", "0"),
            *("-0", "1e2", "NaN", "Infinity", "25 gbp", "25 XYZ", "1,25", "1,,250", "30"),
            *("\u0662\u0665", "\uff12\uff15", "\u0968\u096b"),  # 25 in other digits
        ]
    ),
    st.from_regex(
        r"[£$€]?\s?[0-9]{1,40}(,[0-9]{3}){0,3}(\.[0-9]{0,40})?\s?[A-Za-z]{0,3}", fullmatch=True
    ),
    st.integers().map(str),
    st.integers(10**15, 10**60).map(str),
    st.decimals().map(str),
    st.text(max_size=30),
    st.builds(str.__mul__, st.text(min_size=1, max_size=3), st.integers(1, 10_000)),
)
messages = st.one_of(
    st.none(),
    st.just("For shipping the release"),
    st.sampled_from(
        ["", "   ", "\n\t ", "<!channel>", "<@U0ARJUN>", "*bold* _it_ `code`", "\u202ertl"]
    ),
    st.text(),
    st.builds(str.__mul__, st.text(min_size=1, max_size=3), st.integers(1, 10_000)),
)
FIELDS = {"recipient": recipients, "card": cards, "amount": amounts, "message": messages}
# Amounts each card accepts, spelt the ways people type them.
VALID_AMOUNTS = {
    "sandbox:SBX-BOOKS-GBP": ["25", "£25", "25 GBP", "25.5", "5", "500.00", "10.91", " 42 "],
    "sandbox:SBX-COFFEE-USD": ["10", "$25", "50 USD", "25.00", "50usd"],
    "sandbox:SBX-TRAVEL-EUR": ["20", "€1,000.00", "999.99 EUR", "1000"],
    "sandbox:SBX-CINEMA-GBP": ["15", "£30", "30.00 gbp"],
}
valid_submissions = st.sampled_from(sorted(VALID_AMOUNTS)).flatmap(
    lambda card: st.fixed_dictionaries(
        {
            "card": st.just(card),
            "amount": st.sampled_from(VALID_AMOUNTS[card]),
            "recipient": st.sampled_from([JANE, OMAR]),
            "message": st.one_of(
                st.just("For shipping the release"),
                st.text(min_size=1),
                # Around the 1000-character limit (after trimming).
                st.builds(
                    str.__mul__, st.sampled_from(["x", "&", " <", "é\n"]), st.integers(300, 1100)
                ),
                st.sampled_from(["x" * 1000, f" {'x' * 1000}\n", "x" * 1001]),
            ),
        }
    )
)
some_fields = st.fixed_dictionaries({}, optional=FIELDS)
one_field = st.sampled_from(sorted(FIELDS)).flatmap(lambda k: FIELDS[k].map(lambda v: {k: v}))
submissions = st.one_of(
    valid_submissions,
    st.builds(lambda valid, changed: {**valid, **changed}, valid_submissions, one_field),
    st.builds(lambda valid, changed: {**valid, **changed}, valid_submissions, some_fields),
    some_fields,  # a forged submission: the fields it leaves out are empty
)


@fuzz_settings(max_examples=150)
@given(
    requester=st.sampled_from(HUMANS),
    channel=st.sampled_from([TEAM, QUIET, DM]),
    values=submissions,
)
async def test_any_modal_submission_is_stored_and_announced_or_refused_inline(
    fuzzed: Fuzzed, requester: str, channel: str, values: dict[str, Any]
) -> None:
    try:
        await submit_and_check(fuzzed, requester, channel, values)
    except BaseException:
        await asyncio.sleep(SETTLE)  # let a failed example's effects land before the next one
        raise
    finally:
        fuzzed.requests = len(await stored(fuzzed.stack))
        fuzzed.messages = message_count(fuzzed.stack)


async def submit_and_check(
    fuzzed: Fuzzed, requester: str, channel: str, values: dict[str, Any]
) -> None:
    stack, caplog = fuzzed.stack, fuzzed.caplog
    channel = stack.ws.open_dm(requester).id if channel == DM else channel
    # Whatever earlier examples did is settled: no late request, no late message.
    assert len(await stored(stack)) == fuzzed.requests, "a request was stored late"
    assert message_count(stack) == fuzzed.messages, "a message was posted late"
    view = await open_reward_modal(stack, requester, channel)
    assert view is not None, "the reward modal did not open"
    mark = len(caplog.records)

    reply = await stack.emulator.driver.submit_view(requester, values, strict=False)

    assert reply.responded, f"the submission was not acknowledged in time: {reply}"
    after = await stored(stack)
    event(str(sorted((reply.json.get("errors") or {"stored": 1}).keys())))
    if reply.json.get("response_action") == "errors":
        errors = reply.json.get("errors")
        assert isinstance(errors, dict) and errors
        assert set(errors) <= INPUT_BLOCKS, errors
        assert all(isinstance(m, str) and m.strip() for m in errors.values()), errors
        assert stack.ws.current_view(requester) is not None  # left open to fix the fields
        for block in ("recipient", "card", "message"):
            if not (values.get(block) or "").strip():
                assert block in errors, f"empty {block} was not named: {errors}"
        if len((values.get("message") or "").strip()) > MESSAGE_MAX_CHARS:
            assert "message" in errors, f"a long message was not named: {errors}"
        assert len(after) == fuzzed.requests, "a refused submission stored a request"
        assert message_count(stack) == fuzzed.messages, "a refused submission posted"
    else:
        assert not reply.json.get("response_action"), reply.json
        assert stack.ws.current_view(requester) is None, "the modal stayed open"
        assert len(after) == fuzzed.requests + 1, "exactly one request is stored"
        request = after[-1]
        product = next(p for p in CATALOG if p.key == values["card"])
        assert (request.requester_id, request.recipient_id) == (requester, values["recipient"])
        assert request.status is Status.PENDING_APPROVAL
        assert request.origin_channel_id == channel
        assert (request.provider, request.product_id) == (product.provider, product.product_id)
        assert request.face_value.currency == product.currency
        assert request.face_value.amount == parse_amount(values["amount"], product.currency)
        assert product.allows(request.face_value.amount)
        assert request.message == values["message"].strip()
        assert 0 < len(request.message) <= MESSAGE_MAX_CHARS
        assert request.recipient_id in HUMANS and request.recipient_id != requester
        assert approvers_for(requester, request.recipient_id, APPROVERS)
        await wait_announced(stack, request)
    assert not errors_since(caplog, mark)


async def test_huge_amount_is_refused_inline(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    # Found by the fuzzer. A real client caps the field at 20 characters; a forged one does not.
    assert await open_reward_modal(stack, MAYA) is not None
    huge = "1" + "0" * 26  # 10**26: 29 digits once quantized to pence, over Decimal's 28
    reply = await stack.emulator.driver.submit_view(
        MAYA, {**GOOD_VALUES, "amount": huge}, strict=False
    )
    assert reply.responded, reply
    assert "amount" in reply.json.get("errors", {}), reply.json
    assert await stored(stack) == []
    assert not errors_since(caplog, 0)


# -- 2. the /reward text ------------------------------------------------------------------------

user_ids = st.one_of(
    st.sampled_from([*HUMANS, HELPER_BOT, GONE, "USLACKBOT", "U0NOBODY", "W0X"]),
    st.from_regex(r"[UW][A-Z0-9]{1,30}", fullmatch=True),
    st.builds(lambda n: "U" + "9" * n, st.integers(1, 4000)),
)
mentions = st.builds(
    lambda user, label: f"<@{user}>" if label is None else f"<@{user}|{label}>",
    user_ids,
    st.one_of(st.none(), st.text(alphabet=st.characters(exclude_characters=">"), max_size=20)),
)
words = st.one_of(
    mentions,
    st.sampled_from(["<!channel>", "<!here>", "<#C0TEAMWINS|team-wins>", "<https://x.example|x>"]),
    st.sampled_from(
        ["for", "FOR", "for\n", "25", "£25", "$10", "25 GBP", "1,250.00", "٢٥", "&lt;"]
    ),
    st.from_regex(r"[£$€]?[0-9][0-9,]{0,30}(\.[0-9]{1,30})?( ?[A-Z]{3})?", fullmatch=True),
    st.decimals().map(str),
    st.text(max_size=40),
)
separators = st.sampled_from([" ", "  ", "\n", "\t", "", "\u3000"])
command_texts = st.one_of(
    st.lists(st.tuples(words, separators), max_size=8).map(
        lambda parts: "".join(w + s for w, s in parts)
    ),
    st.text(),
    st.builds(str.__mul__, st.text(min_size=1, max_size=4), st.integers(1, 4000)).map(
        lambda t: t[:4000]
    ),
    st.builds(
        lambda m, t: f"{m} 25 for {t}"[:4000], mentions, st.text(min_size=900, max_size=1100)
    ),
)


@fuzz_settings(max_examples=150)
@given(
    user=st.sampled_from(HUMANS),
    channel=st.sampled_from([TEAM, QUIET, DM]),
    text=command_texts,
)
async def test_any_reward_command_text_opens_a_valid_modal(
    fuzzed: Fuzzed, user: str, channel: str, text: str
) -> None:
    stack, caplog = fuzzed.stack, fuzzed.caplog
    channel = stack.ws.open_dm(user).id if channel == DM else channel
    mark = len(caplog.records)
    ephemerals = len(stack.ws.ephemerals(user))

    view = await open_reward_modal(stack, user, channel, text)

    if view is None:
        # The only other acceptable answer is a private explanation (e.g. no catalog).
        assert len(stack.ws.ephemerals(user)) > ephemerals, (
            f"no modal and no explanation; errors: {errors_since(caplog, mark)}"
        )
    else:
        assert view["callback_id"] == REWARD_MODAL
        inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
        assert set(inputs) == INPUT_BLOCKS
        for element in inputs.values():
            initial = element.get("initial_value")
            assert initial is None or len(initial) <= element.get("max_length", 3000)
        assert json.loads(view["private_metadata"])["channel_id"] == channel
        # The documented form prefills all three: /reward @jane 25 for shipping the release
        documented = re.fullmatch(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?> 25 for (.*)", text, re.DOTALL)
        if documented and documented.group(2).strip():
            assert inputs["recipient"].get("initial_user") == documented.group(1)
            assert inputs["amount"].get("initial_value") == "25"
            message = documented.group(2).strip()[:MESSAGE_MAX_CHARS]
            assert inputs["message"].get("initial_value") == message
            event("documented form")
    assert not errors_since(caplog, mark)
    assert await stored(stack) == [], "typing /reward stored a request"


async def test_command_text_with_the_word_payload_opens_the_modal(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    # Found by the fuzzer. Any field counts: a channel or user named "payload…" breaks too.
    view = await open_reward_modal(stack, MAYA, TEAM, f"<@{JANE}|jane> 25 for the payload API")
    assert view is not None and view["callback_id"] == REWARD_MODAL
    assert not errors_since(caplog, 0)


# -- 3. Approve / Reject button payloads -------------------------------------------------------

# (requester, recipient) of the requests the examples click on; who may decide differs.
REQUEST_SHAPES = ((MAYA, JANE), (ARJUN, JANE), (MAYA, LIN), (OMAR, ARJUN))

forged_values = st.one_of(
    st.integers(-5, 12).map(str),
    st.integers().map(str),
    st.sampled_from(
        [
            *("", " ", "0", "-1", "+1", "01", "001", " 1", "1 ", "1.0", "1e0", "0x1"),
            *("\u0661", "\uff11", "\u0967"),  # 1 in Arabic-Indic, fullwidth, Devanagari digits
            *("9223372036854775807", "9223372036854775808", "999999999999999999"),
            *("0000000000000000001", "1" * 400, "null", "true", '{"id": 1}', "[1]", '"1"'),
            *("1; DROP TABLE reward_requests", "1 OR 1=1", "' OR '1'='1", "%00", "1\x00"),
        ]
    ),
    st.builds(lambda v: json.dumps(v), st.recursive(st.integers() | st.text(), st.lists)),
    st.text(),
)


async def pending_request(fuzzed: Fuzzed, shape: int) -> tuple[int, Message]:
    """The shape's pending request and its card's copy; a new request if it was decided."""
    stack = fuzzed.stack
    if shape in fuzzed.current:
        request_id, copy = fuzzed.current[shape]
        if (await stack.runtime.store.get(request_id)).status is Status.PENDING_APPROVAL:
            return request_id, copy
    requester, recipient = REQUEST_SHAPES[shape]
    await stack.request_reward({**GOOD_VALUES, "recipient": recipient}, requester=requester)
    request = (await stored(stack))[-1]
    await wait_announced(stack, request)
    card = card_for(stack, approvers_for(requester, recipient, APPROVERS)[0], request.id)
    assert card is not None
    copy = stack.ws.post(stack.ws.channels[TEAM], OMAR, card.text, card.blocks, None)
    fuzzed.current[shape] = (request.id, copy)
    return request.id, copy


def may_decide(user: str, request: RewardRequest) -> bool:
    """The policy, restated: a configured approver who neither asked for it nor receives it."""
    return user in APPROVERS and user not in (request.requester_id, request.recipient_id)


reasons = st.one_of(
    st.none(),
    st.sampled_from(["", "   ", "Over budget <!channel>", "&" * 600, "x\n" * 400]),
    st.text(),
    st.builds(str.__mul__, st.text(min_size=1, max_size=3), st.integers(1, 5000)),
)


async def reject_with(stack: Stack, user: str, request_id: int, reason: str | None) -> None:
    """Submit the open reject modal (forged: any length); the request must be rejected with
    the reason trimmed, and the thread must say so."""
    reply = await stack.emulator.driver.submit_view(user, {"reason": reason}, strict=False)
    assert reply.responded, f"the rejection was not acknowledged in time: {reply}"
    assert not reply.json.get("response_action"), reply.json
    assert stack.ws.current_view(user) is None
    request = await stack.runtime.store.get(request_id)
    assert (request.status, request.decided_by) == (Status.REJECTED, user)
    assert request.decision_reason == ((reason or "").strip()[:REASON_MAX_CHARS] or None)
    assert request.summary_channel is not None and request.summary_ts is not None
    await stack.emulator.wait_for(
        lambda: any(
            f"Rejected by <@{user}>" in m.text
            for m in stack.ws.thread_replies(request.summary_channel, request.summary_ts)
        ),
        OUTCOME_TIMEOUT,
        f"the thread of #{request_id} to say it was rejected",
    )


@fuzz_settings(max_examples=150)
@given(data=st.data())
async def test_only_an_allowed_approver_naming_the_request_changes_it(
    fuzzed: Fuzzed, data: st.DataObject
) -> None:
    stack, caplog = fuzzed.stack, fuzzed.caplog
    # Everything is drawn up front and by index, so that what Hypothesis draws never depends
    # on the state earlier examples left (it must be able to replay the choices).
    shape = data.draw(st.integers(0, len(REQUEST_SHAPES) - 1), label="shape")
    card_request, copy = await pending_request(fuzzed, shape)
    before = {r.id: r for r in await stored(stack)}
    pending = [i for i, r in before.items() if r.status is Status.PENDING_APPROVAL]
    pick = data.draw(st.integers(0, 99), label="pick")
    # Anyone, weighted towards the people the policy is about.
    who = data.draw(st.sampled_from([*HUMANS, *APPROVERS, "requester", "recipient"]), label="who")
    shown = before[card_request]
    user = {"requester": shown.requester_id, "recipient": shown.recipient_id}.get(who, who)
    action = data.draw(st.sampled_from([APPROVE_ACTION, REJECT_ACTION]), label="action")
    value = data.draw(
        st.one_of(
            st.none(),  # the button's own value
            st.just(str(pending[pick % len(pending)])),  # another pending request's id
            st.just(str(sorted(before)[pick % len(before)])),  # any request's id
            forged_values,
        ),
        label="value",
    )
    on_copy = data.draw(st.booleans(), label="click the copy")
    # A third of the clicks are what Slack would send: an allowed approver's own card, as is.
    if data.draw(st.integers(0, 2), label="as is") == 0:
        user = approvers_for(shown.requester_id, shown.recipient_id, APPROVERS)[pick % 2 - 1]
        value, on_copy = None, False
    # If the click opens the reject modal: submit it, with this reason, or close it.
    submit_reason = data.draw(st.booleans(), label="submit the reason")
    reason = data.draw(reasons, label="reason")
    own = card_for(stack, user, card_request)  # pending, so it shows its buttons
    message = copy if on_copy or own is None else own
    if stack.ws.current_view(user) is not None:
        await stack.emulator.driver.close_view(user)
    ephemerals = len(stack.ws.ephemerals(user))
    orders = stack.sandbox.order_count
    mark = len(caplog.records)

    reply = await stack.emulator.driver.click_button(
        user, message.channel, message.ts, action, value_override=value
    )

    assert reply.responded, f"the click was not acknowledged in time: {reply}"
    sent = str(card_request) if value is None else value
    named = next((i for i in before if sent == str(i)), None)
    # Another spelling of a number ("01", Arabic-Indic "\u0661"): the bot may read it as that
    # request or refuse it.
    respelt = named is None and sent.isdecimal() and int(sent) in before
    candidates = [named] if named is not None else [int(sent)] if respelt else []
    deciders = [
        i
        for i in candidates
        if may_decide(user, before[i]) and before[i].status is Status.PENDING_APPROVAL
    ]

    async def outcome() -> str | None:
        if len(stack.ws.ephemerals(user)) > ephemerals:
            return "explained"
        view = stack.ws.current_view(user)
        if view is not None and view["callback_id"] == REJECT_MODAL:
            return "reject modal"
        now = {r.id: r.status for r in await stored(stack)}
        if any(now[i] is not before[i].status for i in before):
            return "decided"
        return None

    seen = await stack.emulator.wait_for(outcome, OUTCOME_TIMEOUT, "an answer to the click")
    event(seen)
    after = {r.id: r for r in await stored(stack)}
    assert after.keys() == before.keys(), "a click created or deleted a request"
    changed = [i for i in before if after[i].status is not before[i].status]

    if seen == "explained":
        expected_moved: list[int] = []
        assert stack.ws.ephemerals(user)[-1].text.strip()
        assert not changed, f"a refused click changed {changed}"
        # Only another spelling of the id may be refused where the plain id would be obeyed.
        assert not deciders or named is None, f"{user} was refused #{deciders}"
    elif seen == "reject modal":
        assert action == REJECT_ACTION and deciders, f"{user} got a reject modal for {sent!r}"
        opened = json.loads(stack.ws.current_view(user)["private_metadata"])
        (request_id,) = deciders
        assert opened == {"request_id": request_id}
        assert not changed, "asking for a rejection reason changed a request"
        expected_moved = [request_id] if submit_reason else []
        if submit_reason:
            await reject_with(stack, user, request_id, reason)
        else:
            await stack.emulator.driver.close_view(user)
    else:
        assert action == APPROVE_ACTION, f"{action} changed {changed} without the reason modal"
        assert changed == deciders, f"{user} clicking {sent!r} changed {changed}"
        (request_id,) = expected_moved = changed
        assert after[request_id].decided_by == user

        async def fulfilled() -> bool:
            status = (await stack.runtime.store.get(request_id)).status
            return status is Status.FULFILLED

        await stack.emulator.wait_for(fulfilled, OUTCOME_TIMEOUT, f"#{request_id} fulfilled")
        assert stack.sandbox.order_count == orders + 1, "one approval, one order"
        assert len(stack.ws.ephemerals(user)) == ephemerals, "an approval was also refused"
    if seen != "decided":
        assert stack.sandbox.order_count == orders, "ordered without an approval"
    # Nothing else moved; approved requests were each ordered once at most.
    final = await stored(stack)
    moved = [r.id for r in final if r.status is not before[r.id].status]
    assert moved == expected_moved, f"{user} clicking {sent!r} changed {moved}"
    ordered = [r for r in final if r.status not in (Status.PENDING_APPROVAL, Status.REJECTED)]
    assert stack.sandbox.order_count <= len(ordered)
    assert not errors_since(caplog, mark)
