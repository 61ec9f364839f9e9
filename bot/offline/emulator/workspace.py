"""In-memory workspace state: users, user groups, conversations, messages, ephemerals
and views.

The Web API methods mutate it and tests read it back through the query helpers, so
assertions are about what a user would actually see in Slack, not about which calls
the bot made.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.offline.emulator.ids import TsClock

JSON = dict[str, Any]


@dataclass
class User:
    """A workspace member as returned by ``users.info``."""

    id: str
    name: str
    real_name: str = ""
    email: str | None = None
    tz: str = "Europe/London"
    tz_offset: int = 0
    is_bot: bool = False
    deleted: bool = False
    team_id: str = ""

    def to_api(self) -> JSON:
        """The documented ``users.info`` ``user`` object (the fields bots rely on)."""
        real_name = self.real_name or self.name
        profile: JSON = {
            "real_name": real_name,
            "real_name_normalized": real_name,
            "display_name": self.name,
            "display_name_normalized": self.name,
        }
        if self.email is not None:
            profile["email"] = self.email
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": real_name,
            "tz": self.tz,
            "tz_label": self.tz,
            "tz_offset": self.tz_offset,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "profile": profile,
        }


@dataclass
class Channel:
    """A conversation: public/private channel or the bot's DM with one user."""

    id: str
    name: str
    members: set[str] = field(default_factory=set)
    is_private: bool = False
    dm_user: str | None = None

    @property
    def is_im(self) -> bool:
        """DMs are conversations that carry the other party's user id."""
        return self.dm_user is not None


@dataclass
class UserGroup:
    """A user group (mentioned as ``@handle``), as ``usergroups.*`` methods see it."""

    id: str
    handle: str
    members: list[str] = field(default_factory=list)


@dataclass
class Message:
    """A message visible to every member of its conversation."""

    channel: str
    ts: str
    user: str
    text: str
    blocks: list[JSON] = field(default_factory=list)
    thread_ts: str | None = None
    edited: JSON | None = None
    bot_id: str | None = None
    app_id: str | None = None
    team: str = ""
    # Message metadata ({"event_type", "event_payload"}), as chat.postMessage accepts it.
    metadata: JSON | None = None

    def to_api(self) -> JSON:
        """The ``message`` object Slack returns and embeds in interaction payloads."""
        data: JSON = {"type": "message", "user": self.user, "text": self.text, "ts": self.ts}
        data["team"] = self.team
        if self.bot_id is not None:
            data["bot_id"] = self.bot_id
            data["app_id"] = self.app_id
        if self.blocks:
            data["blocks"] = self.blocks
        if self.thread_ts is not None:
            data["thread_ts"] = self.thread_ts
        if self.edited is not None:
            data["edited"] = self.edited
        if self.metadata is not None:
            data["metadata"] = self.metadata
        return data


@dataclass
class Ephemeral:
    """A message only ``user`` can see; it is never returned by history queries."""

    channel: str
    user: str
    ts: str
    text: str
    blocks: list[JSON] = field(default_factory=list)
    thread_ts: str | None = None


class Workspace:
    """The whole workspace plus the installed app's identity (team, bot user, app id)."""

    def __init__(
        self,
        *,
        team_id: str = "T0EMULATOR",
        team_domain: str = "emulator",
        team_name: str = "Emulator Workspace",
        bot_user_id: str = "UBOT",
        bot_name: str = "rewardbot",
        bot_id: str = "BBOT",
        app_id: str = "A0EMULATOR",
    ) -> None:
        self.team_id = team_id
        self.team_domain = team_domain
        self.team_name = team_name
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.usergroups: dict[str, UserGroup] = {}
        self._messages: dict[str, list[Message]] = {}
        self._ephemerals: list[Ephemeral] = []
        self.views: dict[str, list[JSON]] = {}
        self.view_errors_by_user: dict[str, dict[str, str]] = {}
        # Each user's App Home tab (one published ``home`` view per user), by user id.
        self.home_views: dict[str, JSON] = {}
        self.clock = TsClock()
        self.add_user(bot_user_id, name=bot_name, real_name=bot_name, is_bot=True)

    # -- builder ---------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        *,
        name: str,
        real_name: str = "",
        email: str | None = None,
        tz: str = "Europe/London",
        tz_offset: int = 0,
        is_bot: bool = False,
        deleted: bool = False,
    ) -> User:
        """Add a member; ``email`` defaults to ``<name>@example.com`` for humans."""
        if email is None and not is_bot:
            email = f"{name}@example.com"
        user = User(user_id, name, real_name, email, tz, tz_offset, is_bot, deleted, self.team_id)
        self.users[user_id] = user
        return user

    def add_channel(
        self,
        channel_id: str,
        *,
        name: str,
        members: Iterable[str] = (),
        is_private: bool = False,
        bot_member: bool = True,
    ) -> Channel:
        """Add a channel; ``bot_member=False`` models an app that was never invited."""
        member_set = set(self._known_users(members))
        if bot_member:
            member_set.add(self.bot_user_id)
        channel = Channel(channel_id, name, member_set, is_private)
        self.channels[channel_id] = channel
        self._messages.setdefault(channel_id, [])
        return channel

    def add_usergroup(self, group_id: str, handle: str, members: Iterable[str] = ()) -> UserGroup:
        """Add a user group such as ``S0ENG`` / ``@eng``; handles are unique, as in Slack."""
        if any(g.handle == handle for g in self.usergroups.values()):
            raise ValueError(f"user group handle @{handle} is already taken")
        group = UserGroup(group_id, handle, self._known_users(members))
        self.usergroups[group_id] = group
        return group

    def set_usergroup_members(self, group_id: str, members: Iterable[str]) -> UserGroup:
        """Replace a group's members (what ``usergroups.users.update`` does in Slack)."""
        group = self.usergroups.get(group_id)
        if group is None:
            raise ValueError(f"unknown user group {group_id}: add_usergroup() it first")
        group.members = self._known_users(members)
        return group

    def _known_users(self, user_ids: Iterable[str]) -> list[str]:
        """``user_ids`` without duplicates (order kept), refusing ids not in the workspace."""
        ids = list(dict.fromkeys(user_ids))
        unknown = set(ids) - self.users.keys()
        if unknown:
            raise ValueError(f"unknown members {sorted(unknown)}: add_user() them first")
        return ids

    # -- conversations ---------------------------------------------------------------

    def open_dm(self, user_id: str) -> Channel:
        """The bot's DM with ``user_id``; the same id every time, as in Slack."""
        for channel in self.channels.values():
            if channel.dm_user == user_id:
                return channel
        dm_id = "D" + user_id[1:]
        channel = Channel(dm_id, user_id, {user_id, self.bot_user_id}, True, user_id)
        self.channels[dm_id] = channel
        self._messages.setdefault(dm_id, [])
        return channel

    def resolve_channel(self, ref: str) -> Channel | None:
        """Channel id, DM id, user id (opens the DM, as Slack does) or ``#name``."""
        if ref in self.channels:
            return self.channels[ref]
        if ref[:1] in ("U", "W") and ref in self.users:
            return self.open_dm(ref)
        name = ref.removeprefix("#")
        return next((c for c in self.channels.values() if c.name == name and not c.is_im), None)

    def can_see(self, user_id: str, channel: Channel) -> bool:
        """Members see private channels and DMs; everyone sees public channels."""
        return user_id in channel.members or not (channel.is_private or channel.is_im)

    # -- messages --------------------------------------------------------------------

    def post(
        self, channel: Channel, user: str, text: str, blocks: list[JSON], thread_ts: str | None
    ) -> Message:
        """Append a message authored by ``user`` (the bot adds bot_id/app_id)."""
        is_bot = user == self.bot_user_id
        msg = Message(
            channel.id,
            self.clock.next_ts(),
            user,
            text,
            blocks,
            thread_ts,
            bot_id=self.bot_id if is_bot else None,
            app_id=self.app_id if is_bot else None,
            team=self.team_id,
        )
        self._messages.setdefault(channel.id, []).append(msg)
        return msg

    def find_message(self, channel_id: str, ts: str) -> Message | None:
        """The message with this ``ts`` in this conversation, if any."""
        return next((m for m in self._messages.get(channel_id, []) if m.ts == ts), None)

    def delete_message(self, channel_id: str, ts: str) -> None:
        """Remove a message (used by ``delete_original`` on response_url)."""
        self._messages[channel_id] = [m for m in self._messages.get(channel_id, []) if m.ts != ts]

    def post_ephemeral(
        self, channel: Channel, user: str, text: str, blocks: list[JSON], thread_ts: str | None
    ) -> Ephemeral:
        """Store a message visible only to ``user``."""
        eph = Ephemeral(channel.id, user, self.clock.next_ts(), text, blocks, thread_ts)
        self._ephemerals.append(eph)
        return eph

    def find_ephemeral(self, user_id: str, channel_id: str, ts: str) -> Ephemeral | None:
        """The user's ephemeral message with this ``ts`` in this conversation."""
        return next(
            (
                e
                for e in self._ephemerals
                if e.user == user_id and e.channel == channel_id and e.ts == ts
            ),
            None,
        )

    def delete_ephemeral(self, eph: Ephemeral) -> None:
        """Remove an ephemeral message (``delete_original`` on response_url)."""
        self._ephemerals.remove(eph)

    # -- query helpers for tests -----------------------------------------------------

    def messages(self, channel_id: str) -> list[Message]:
        """All messages in a conversation, thread replies included, oldest first."""
        return list(self._messages.get(channel_id, []))

    def thread_replies(self, channel_id: str, ts: str) -> list[Message]:
        """Replies in the thread whose parent has ``ts`` (the parent excluded)."""
        return [m for m in self._messages.get(channel_id, []) if m.thread_ts == ts and m.ts != ts]

    def dm_messages(self, user_id: str) -> list[Message]:
        """Messages in the bot's DM with ``user_id`` (empty if never opened)."""
        dm = next((c for c in self.channels.values() if c.dm_user == user_id), None)
        return self.messages(dm.id) if dm else []

    def ephemerals(self, user_id: str) -> list[Ephemeral]:
        """Ephemeral messages shown to ``user_id``, oldest first."""
        return [e for e in self._ephemerals if e.user == user_id]

    def current_view(self, user_id: str) -> JSON | None:
        """The modal on top of the user's view stack, or None if no modal is open."""
        stack = self.views.get(user_id)
        return stack[-1] if stack else None

    def view_errors(self, user_id: str) -> dict[str, str]:
        """Field errors the bot returned for the user's last view submission."""
        return dict(self.view_errors_by_user.get(user_id, {}))

    def find_view(self, view_id: str | None = None, external_id: str | None = None) -> JSON | None:
        """Any open modal by id or external_id, whoever it belongs to (Home tabs are
        found with ``find_home_view``)."""
        for stack in self.views.values():
            for view in stack:
                if view_id is not None and view["id"] == view_id:
                    return view
                if external_id and view.get("external_id") == external_id:
                    return view
        return None

    def home_view(self, user_id: str) -> JSON | None:
        """The Home tab the bot last published for ``user_id``, or None if it never did."""
        return self.home_views.get(user_id)

    def find_home_view(
        self, view_id: str | None = None, external_id: str | None = None
    ) -> tuple[str, JSON] | None:
        """``(user_id, view)`` of the Home tab with this id or external_id, if any."""
        for user_id, view in self.home_views.items():
            if view_id is not None and view["id"] == view_id:
                return user_id, view
            if external_id and view.get("external_id") == external_id:
                return user_id, view
        return None

    def view_owner(self, view_id: str) -> str | None:
        """The user whose stack holds ``view_id``."""
        for user_id, stack in self.views.items():
            if any(v["id"] == view_id for v in stack):
                return user_id
        return None

    def recent_activity(self, limit: int = 15) -> list[str]:
        """Human-readable recent messages and ephemerals, for timeout diagnostics."""
        lines = [
            (m.ts, f"[{m.channel}] {m.user}: {m.text!r}")
            for msgs in self._messages.values()
            for m in msgs
        ]
        lines += [
            (e.ts, f"[{e.channel}] (ephemeral to {e.user}) {e.text!r}") for e in self._ephemerals
        ]
        return [line for _, line in sorted(lines)[-limit:]]
