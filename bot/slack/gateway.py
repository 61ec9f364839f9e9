"""Rewardbot's side of the Slack Web API: every call the core makes goes through here.

Only documented Web API methods are used (``auth.test``, ``users.info``, ``usergroups.users.list``,
``views.open``, ``views.publish``, ``chat.postMessage``, ``chat.update``, ``chat.postEphemeral``,
``chat.getPermalink``, ``conversations.open``, ``conversations.history``), so what works
against the emulator works in a real workspace. Messages are rendered by :mod:`bot.slack.cards`
and :mod:`bot.slack.messages`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict
from slack_sdk.errors import SlackApiError, SlackClientError

from bot import clock
from bot.domain import RewardRequest, Status
from bot.metrics import Metrics
from bot.pacing import Pacer
from bot.redaction import REDACTOR
from bot.slack.cards import approval_card, request_summary
from bot.slack.messages import delivery_message, requester_update, thread_update
from bot.slack.web_client import ObservedWebClient, slack_error_code
from bot.store import Store
from providers.base import Redemption

log = logging.getLogger(__name__)

# Marks the delivery DM (message metadata), so a resumed job can tell it was sent.
_DELIVERY_EVENT = "rewardbot_delivery"

# Everything a Web API call can fail with: Slack's error answers, network errors, timeouts.
SLACK_FAILURES = (SlackClientError, aiohttp.ClientError, TimeoutError)

# Errors that mean "the bot cannot post in that channel", so the requester's DM is used instead.
_CANNOT_POST_IN_CHANNEL = frozenset(
    {
        "not_in_channel",
        "channel_not_found",
        "is_archived",
        "restricted_action",
        "cannot_post_in_channel",
    }
)


class _Profile(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    email: str | None = None
    real_name: str = ""


class SlackUser(BaseModel):
    """The parts of ``users.info`` the bot relies on."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    name: str = ""
    real_name: str = ""
    is_bot: bool = False
    deleted: bool = False
    # The user's Slack time zone (IANA name), as set in their Slack preferences.
    tz: str | None = None
    profile: _Profile = _Profile()

    @property
    def display_name(self) -> str:
        return self.real_name or self.profile.real_name or self.name or self.id

    @property
    def email(self) -> str | None:
        """Present only with the ``users:read.email`` scope."""
        return self.profile.email


class UnknownUser(LookupError):
    """``users.info`` does not know the user."""


class SlackGateway:
    """Posts and updates the messages of a reward request, tracking where they are.

    The messages jobs post or update keep Slack's pace per channel (about one a second, for
    the whole app: :meth:`_turn_to_post`), in every process together. What someone waits for
    is never paced (the ephemeral answer, the modal, the answer in their DM): it must come at
    once, and one answer to one person floods no channel.
    """

    def __init__(
        self,
        client: ObservedWebClient,
        store: Store,
        metrics: Metrics,
        resendable: Collection[str] = (),
        pacer: Pacer | None = None,
    ) -> None:
        """``resendable``: the providers that can email a delivered card to another address
        (approval cards offer it). ``metrics``: where delivery times are observed. ``pacer``:
        the turns of every channel's posts (``None``: Slack's pace is not kept)."""
        self.client = client
        self._resendable = frozenset(resendable)
        self._client_without_retries = client.without_retries()
        self._store = store
        self._metrics = metrics
        self._pacer = pacer
        # Whether Slack accepted the bot token (``check_auth``): readiness asks.
        self.auth_checked = False

    async def check_auth(self) -> None:
        """Ask Slack whether it accepts the bot token (``auth.test``); raises
        ``SlackApiError`` if it refuses it, or a network error if Slack cannot be reached.
        Asked once, without the client's retries (a 429's wait is unbounded): until it
        answers, start-up waits and ``/healthz`` is not served; :mod:`bot.slack.auth` asks again
        in the background."""
        await self._client_without_retries.auth_test()
        self.auth_checked = True

    async def user(self, user_id: str) -> SlackUser:
        try:
            response = await self.client.users_info(user=user_id)
        except SlackApiError as exc:
            if slack_error_code(exc) == "user_not_found":
                raise UnknownUser(user_id) from exc
            raise
        return SlackUser.model_validate(response["user"])

    async def usergroup_members(self, group_id: str) -> list[str]:
        response = await self.client.usergroups_users_list(usergroup=group_id)
        users: list[str] = response.get("users", [])
        return [str(user) for user in users]

    async def publish_home(self, user_id: str, view: dict[str, Any]) -> None:
        await self.client.views_publish(user_id=user_id, view=view)

    async def open_modal(self, trigger_id: str, view: dict[str, Any]) -> None:
        await self.client.views_open(trigger_id=trigger_id, view=view)

    async def update_modal(self, view_id: str, view_hash: str, view: dict[str, Any]) -> None:
        """Redraw an open modal; the hash makes Slack refuse it if the modal changed since."""
        await self.client.views_update(view_id=view_id, hash=view_hash, view=view)

    async def dm(self, user_id: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        """A DM a job sends (an update, a reminder, a question), at the DM's pace."""
        await self._dm_with_ts(user_id, text, blocks)

    async def answer_in_dm(self, user_id: str, text: str) -> None:
        """Answer someone who clicked or typed, in their DM, at once (never paced)."""
        await self._dm_with_ts(user_id, text, None, paced=False)

    async def _dm_with_ts(
        self, user_id: str, text: str, blocks: list[dict[str, Any]] | None, *, paced: bool = True
    ) -> tuple[str, str]:
        opened = await self.client.conversations_open(users=user_id)
        channel = str(opened["channel"]["id"])
        if paced:
            await self._turn_to_post(channel)
        # No unfurling: Slack must not fetch a redemption link to build a preview.
        posted = await self.client.chat_postMessage(
            channel=channel, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
        )
        return channel, str(posted["ts"])

    async def ephemeral(self, channel: str, user_id: str, text: str) -> None:
        await self.client.chat_postEphemeral(channel=channel, user=user_id, text=text)

    async def post_summary(self, request: RewardRequest) -> RewardRequest:
        """Post the request's summary where ``/reward`` was typed, else in the requester's DM."""
        text, blocks = request_summary(request, await self._store.batch(request))
        try:
            await self._turn_to_post(request.origin_channel_id)
            posted = await self.client.chat_postMessage(
                channel=request.origin_channel_id, text=text, blocks=blocks
            )
            channel, ts = str(posted["channel"]), str(posted["ts"])
        except SlackApiError as exc:
            if slack_error_code(exc) not in _CANNOT_POST_IN_CHANNEL:
                raise
            log.info(
                "cannot post request %s in %s (%s); using the requester's DM",
                request.id,
                request.origin_channel_id,
                slack_error_code(exc),
            )
            channel, ts = await self._dm_with_ts(request.requester_id, text, blocks)
        await self._store.set_summary_message(
            request.id, channel, ts, await self._permalink(channel, ts)
        )
        return await self._store.get(request.id)

    async def _permalink(self, channel: str, ts: str) -> str | None:
        """The message's link, kept for the export; the export can do without one."""
        try:
            response = await self.client.chat_getPermalink(channel=channel, message_ts=ts)
        except SLACK_FAILURES as exc:
            log.warning("no permalink for %s/%s: %r", channel, ts, exc)
            return None
        return str(response["permalink"])

    async def post_approval_card(self, request: RewardRequest, channel: str) -> None:
        """Post the card in an approvals channel, where any of the request's approvers decides."""
        text, blocks = self._approval_card(request, await self._store.batch(request))
        await self._turn_to_post(channel)
        posted = await self.client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        await self._store.add_approval_card(
            request.id, channel, str(posted["channel"]), str(posted["ts"])
        )

    def _approval_card(
        self, request: RewardRequest, batch: list[RewardRequest]
    ) -> tuple[str, list[dict[str, Any]]]:
        return approval_card(request, batch, self._resendable)

    async def send_approval_cards(self, request: RewardRequest, approvers: list[str]) -> None:
        """DM each approver a card. One unreachable approver does not keep the others from
        deciding; the first failure is raised afterwards so the job retries the missing ones."""
        text, blocks = self._approval_card(request, await self._store.batch(request))
        failures: list[Exception] = []
        for approver in approvers:
            try:
                channel, ts = await self._dm_with_ts(approver, text, blocks)
            except SLACK_FAILURES as exc:
                log.warning(
                    "could not send approval card for request %s to %s: %r",
                    request.id,
                    approver,
                    exc,
                )
                failures.append(exc)
                continue
            await self._store.add_approval_card(request.id, approver, channel, ts)
        if failures:
            raise failures[0]

    async def refresh(self, request: RewardRequest) -> None:
        """Re-render the summary and every approval card from the request's current state."""
        # Re-read, so a slow caller never paints an older status over a newer one. A batch's
        # messages belong to its first request and show every recipient.
        request = await self.thread_head(await self._store.get(request.id))
        batch = await self._store.batch(request)
        targets: list[tuple[str, str, tuple[str, list[dict[str, Any]]]]] = []
        if request.summary_channel and request.summary_ts:
            summary = request_summary(request, batch)
            targets.append((request.summary_channel, request.summary_ts, summary))
        card = self._approval_card(request, batch)
        targets.extend(
            (c.channel, c.ts, card) for c in await self._store.approval_cards(request.id)
        )
        for channel, ts, (text, blocks) in targets:
            try:
                await self._turn_to_post(channel)
                await self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
            except SLACK_FAILURES as exc:
                log.warning(
                    "could not update message %s/%s for request %s: %r",
                    channel,
                    ts,
                    request.id,
                    exc,
                )

    async def reply_in_thread(self, request: RewardRequest, text: str) -> None:
        if request.summary_channel and request.summary_ts:
            await self.reply_to(request.summary_channel, request.summary_ts, text)

    async def reply_to(self, channel: str, ts: str, text: str) -> None:
        await self._turn_to_post(channel)
        await self.client.chat_postMessage(channel=channel, thread_ts=ts, text=text)

    async def _turn_to_post(self, channel: str) -> None:
        """Wait for ``channel``'s turn: Slack takes about one message a second in a channel
        from the whole app, whichever of its processes posts it."""
        if self._pacer is not None:
            await self._pacer.before_post(channel)

    async def deliver(self, request: RewardRequest, redemption: Redemption | None) -> None:
        """DM the card to the recipient. Its link, code and PIN go nowhere else; ``None``
        means the provider emailed the card itself and the DM says so. The message carries
        metadata naming the request, so :meth:`was_delivered` can find it after a crash."""
        if redemption is not None:
            REDACTOR.remember(
                *(
                    s.get_secret_value()
                    for s in (redemption.url, redemption.code, redemption.pin)
                    if s
                )
            )
        text, blocks = delivery_message(request, redemption)
        approved_at = await self._last_approval(request)
        opened = await self.client.conversations_open(users=request.recipient_id)
        # Sent without slack_sdk's automatic retries: a retried post whose first answer was
        # lost could DM the card twice. The caller checks was_delivered before trying again.
        # Not paced either: nothing may stand between the delivery's fence and its DM (a run
        # waiting here for a turn would widen the window in which another run takes the job
        # over, finds no DM and sends a second one), and one card DMs one person once.
        await self._client_without_retries.chat_postMessage(
            channel=str(opened["channel"]["id"]),
            text=text,
            blocks=blocks,
            unfurl_links=False,
            unfurl_media=False,
            metadata={
                "event_type": _DELIVERY_EVENT,
                "event_payload": {"request_id": request.id},
            },
        )
        # Nothing after the DM may fail: a delivery step that failed would be run again.
        if approved_at is not None:
            self._metrics.delivery_time.observe((clock.now() - approved_at).total_seconds())

    async def _last_approval(self, request: RewardRequest) -> datetime | None:
        """When the request was last approved (its audit event), for the approve → delivered
        metric; ``None`` if that cannot be read: a metric never stops a delivery."""
        try:
            events = await self._store.events(request.id)
        except Exception:
            log.exception("request %s: cannot read its approval time for the metrics", request.id)
            return None
        approvals = [e.at for e in events if e.to_status is Status.APPROVED]
        return approvals[-1] if approvals else None

    async def was_delivered(self, request: RewardRequest, since: datetime) -> bool:
        """Whether the recipient's DM holds this request's delivery message, posted after
        ``since`` (when the delivery started), reading every page of that history."""
        opened = await self.client.conversations_open(users=request.recipient_id)
        # A day earlier than our own clock said: a clock can step, and Slack's may disagree
        # with ours by minutes. Reading a day of one person's DMs is cheap.
        oldest = f"{since.timestamp() - 86_400:.6f}"
        cursor: str | None = None
        while True:
            page = await self.client.conversations_history(
                channel=str(opened["channel"]["id"]),
                oldest=oldest,
                include_all_metadata=True,
                limit=200,
                cursor=cursor,
            )
            messages: list[dict[str, Any]] = page.get("messages", [])
            if any(
                message.get("metadata", {}).get("event_type") == _DELIVERY_EVENT
                and message["metadata"].get("event_payload", {}).get("request_id") == request.id
                for message in messages
            ):
                return True
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return False

    async def thread_head(self, request: RewardRequest) -> RewardRequest:
        """The request whose summary and cards show ``request``: itself, or its batch's first."""
        if request.batch_id is None or request.batch_id == request.id:
            return request
        return await self._store.get(request.batch_id)

    async def announce(
        self, request: RewardRequest, status: Status, batch: Sequence[RewardRequest] = ()
    ) -> None:
        """Show that ``request`` reached ``status``: every message of it re-rendered, a thread
        reply, and the requester told once it settles; with ``batch``, for the whole batch
        (decided at once), in one reply. Raises on a Slack failure, so the notification job is
        retried; the message updates alone are best effort."""
        await self.refresh(request)
        shown = request.model_copy(update={"status": status})
        head = await self.thread_head(request)
        update = thread_update(shown)
        if batch:
            update = f"All {len(batch)} rewards: {update}"
        elif head.id != request.id:
            update = f"<@{request.recipient_id}>'s card: {update}"
        await self.reply_in_thread(head, update)
        # A requester who cancelled knows; the thread reply is enough.
        if (status.is_settled and status is not Status.CANCELLED) or status is Status.NEEDS_REVIEW:
            await self.dm(request.requester_id, requester_update(shown, batch))
