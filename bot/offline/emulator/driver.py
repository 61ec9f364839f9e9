"""Acts as Slack's client on behalf of users: commands, clicks, submissions, typing,
opening the app's Home tab.

Each action is checked against what the user can actually see (a button must be in the
message or modal, an option must be offered), delivered to the bot as Slack delivers
it, and the bot's answer is then applied the way Slack applies it (immediate command
responses become ephemeral messages, ``response_action`` drives the modal stack).
"""

from __future__ import annotations

from typing import Any, Literal

from bot.offline.emulator import payloads, views
from bot.offline.emulator.blockkit import (
    find_element,
    flatten_options,
    validate_blocks,
    validate_view,
)
from bot.offline.emulator.context import JSON
from bot.offline.emulator.delivery import BotReply, Delivery, HttpDelivery, SocketDelivery
from bot.offline.emulator.errors import ApiError, EmulatorError
from bot.offline.emulator.manifest import AppManifest, ManifestGate
from bot.offline.emulator.response_urls import ResponseUrls
from bot.offline.emulator.triggers import TriggerRegistry
from bot.offline.emulator.view_state import build_state
from bot.offline.emulator.workspace import Channel, Workspace

_EXTERNAL_SELECTS = ("external_select", "multi_external_select")


class Driver:
    """User-side actions against the bot, through whichever ``Delivery`` is configured."""

    def __init__(
        self, ws: Workspace, triggers: TriggerRegistry, response_urls: ResponseUrls
    ) -> None:
        self.ws = ws
        self.triggers = triggers
        self.response_urls = response_urls
        self.delivery: Delivery | None = None
        # The app's manifest: only what Slack would deliver to an app with it is delivered.
        self.manifest: AppManifest | None = None
        self._offered: dict[tuple[str, str], list[JSON]] = {}

    def _transport(self) -> Delivery:
        if self.delivery is None:
            raise EmulatorError("no delivery configured: give a request_url or socket_mode=True")
        if self.manifest is None:
            return self.delivery
        over_http = not isinstance(self.delivery, SocketDelivery)
        urls = self.delivery.request_urls if isinstance(self.delivery, HttpDelivery) else ()
        return ManifestGate(self.delivery, self.manifest, over_http=over_http, request_urls=urls)

    def _visible_channel(self, user_id: str, channel_ref: str) -> Channel:
        if user_id not in self.ws.users:
            raise EmulatorError(f"unknown user {user_id!r}")
        channel = self.ws.resolve_channel(channel_ref)
        if channel is None:
            raise EmulatorError(f"unknown channel {channel_ref!r}")
        if not self.ws.can_see(user_id, channel):
            raise EmulatorError(f"{user_id} cannot see {channel.id}")
        return channel

    def _top_view(self, user_id: str, view_id: str | None = None) -> JSON:
        view = self.ws.current_view(user_id)
        if view is None:
            raise EmulatorError(f"{user_id} has no modal open")
        if view_id is not None and view["id"] != view_id:
            raise EmulatorError(f"view {view_id} is not {user_id}'s current view ({view['id']})")
        return view

    # -- slash commands --------------------------------------------------------------

    async def slash_command(
        self, user_id: str, channel_id: str, command: str = "/reward", text: str = ""
    ) -> BotReply:
        """Run a slash command; an immediate response body becomes a message to the user."""
        channel = self._visible_channel(user_id, channel_id)
        fields = payloads.slash_command(
            self.ws,
            user_id,
            channel,
            command,
            text,
            self.triggers.issue(user_id),
            self.response_urls.issue(user_id, channel.id),
        )
        reply = await self._transport().slash_command(fields)
        body = reply.json
        if reply.responded and (body.get("text") or body.get("blocks")):
            self._show_command_response(user_id, channel, body)
        return reply

    def _show_command_response(self, user_id: str, channel: Channel, body: JSON) -> None:
        """Slack shows an immediate command response to the user, or to all if in_channel."""
        try:
            blocks = validate_blocks(body["blocks"]) if body.get("blocks") else []
        except ApiError as exc:
            raise EmulatorError(f"Slack would reject the bot's command response: {exc}") from exc
        text = str(body.get("text") or "")
        if body.get("response_type") == "in_channel":
            self.ws.post(channel, self.ws.bot_user_id, text, blocks, None)
        else:
            self.ws.post_ephemeral(channel, user_id, text, blocks, None)

    # -- buttons ---------------------------------------------------------------------

    async def click_button(
        self,
        user_id: str,
        channel_id: str,
        message_ts: str,
        action_id: str,
        value_override: str | None = None,
    ) -> BotReply:
        """Click a button shown in a message (or in the user's ephemeral message)."""
        channel = self._visible_channel(user_id, channel_id)
        eph = self.ws.find_ephemeral(user_id, channel.id, message_ts)
        if eph is not None:
            message: JSON = {
                "type": "message",
                "ts": eph.ts,
                "text": eph.text,
                "blocks": eph.blocks,
            }
        else:
            msg = self.ws.find_message(channel.id, message_ts)
            if msg is None:
                raise EmulatorError(f"no message {message_ts} in {channel.id} visible to {user_id}")
            message = msg.to_api()
        block, button = self._shown_button(message.get("blocks", []), action_id)
        value = value_override if value_override is not None else button.get("value")
        payload = payloads.message_block_actions(
            self.ws,
            user_id,
            channel,
            message,
            eph is not None,
            payloads.button_action(block, button, value, self.ws.clock.next_ts()),
            self.triggers.issue(user_id),
            self.response_urls.issue(user_id, channel.id, message_ts, eph is not None),
        )
        return await self._transport().interactive(payload)

    async def click_view_button(
        self, user_id: str, action_id: str, value_override: str | None = None
    ) -> BotReply:
        """Click a button in the user's current modal."""
        return await self._click_in_view(
            user_id, self._top_view(user_id), action_id, value_override
        )

    async def _click_in_view(
        self, user_id: str, view: JSON, action_id: str, value_override: str | None
    ) -> BotReply:
        block, button = self._shown_button(view["blocks"], action_id)
        value = value_override if value_override is not None else button.get("value")
        action = payloads.button_action(block, button, value, self.ws.clock.next_ts())
        payload = payloads.view_block_actions(
            self.ws, user_id, view, action, self.triggers.issue(user_id)
        )
        return await self._transport().interactive(payload)

    async def choose_in_view(self, user_id: str, block_id: str, value: Any) -> BotReply:
        """Change an input with ``dispatch_action`` in the user's current modal: Slack sends
        the bot ``block_actions`` with the view. The view's state carries this value (other
        inputs at their initial values); values are not kept for the submission, which takes
        every value it needs."""
        view = self._top_view(user_id)
        block = next((b for b in view.get("blocks", []) if b.get("block_id") == block_id), None)
        if block is None or block.get("type") != "input":
            raise EmulatorError(f"no input block {block_id!r} in {user_id}'s modal")
        if not block.get("dispatch_action"):
            raise EmulatorError(
                f"input {block_id!r} has no dispatch_action: Slack sends nothing when it "
                "changes; give its value to submit_view"
            )
        state = build_state(view, {block_id: value}, self._offered_for(user_id), strict=False)
        element = block["element"]
        chosen = state["values"][block_id][element["action_id"]]
        action = {
            **chosen,
            "action_id": element["action_id"],
            "block_id": block_id,
            "action_ts": self.ws.clock.next_ts(),
        }
        payload = payloads.view_block_actions(
            self.ws, user_id, {**view, "state": state}, action, self.triggers.issue(user_id)
        )
        return await self._transport().interactive(payload)

    @staticmethod
    def _shown_button(blocks: list[JSON], action_id: str) -> tuple[JSON, JSON]:
        try:
            return find_element(blocks, action_id, ("button",))
        except KeyError:
            shown = [
                e.get("action_id")
                for b in blocks
                for e in (b.get("elements") or []) + [b.get("accessory") or {}]
                if isinstance(e, dict) and e.get("type") == "button"
            ]
            raise EmulatorError(f"no button {action_id!r} is shown; buttons: {shown}") from None

    # -- App Home --------------------------------------------------------------------

    async def open_app_home(
        self, user_id: str, tab: Literal["home", "messages"] = "home"
    ) -> BotReply:
        """The user opens the app's App Home: the bot hears ``app_home_opened`` (an Events
        API ``event_callback``), with the Home tab's current view if one was published."""
        if user_id not in self.ws.users:
            raise EmulatorError(f"unknown user {user_id!r}")
        if tab not in ("home", "messages"):
            raise EmulatorError(f"App Home has no {tab!r} tab: 'home' or 'messages'")
        dm = self.ws.open_dm(user_id)
        event = payloads.app_home_opened(
            self.ws, user_id, dm, tab, self.ws.home_view(user_id), self.ws.clock.next_ts()
        )
        return await self._transport().event(payloads.event_callback(self.ws, event))

    async def click_home_button(
        self, user_id: str, action_id: str, value_override: str | None = None
    ) -> BotReply:
        """Click a button in the user's Home tab (as the bot last published it)."""
        if user_id not in self.ws.users:
            raise EmulatorError(f"unknown user {user_id!r}")
        view = self.ws.home_view(user_id)
        if view is None:
            raise EmulatorError(f"the bot never published a Home tab for {user_id}")
        return await self._click_in_view(user_id, view, action_id, value_override)

    # -- modals ----------------------------------------------------------------------

    async def submit_view(
        self,
        user_id: str,
        values: dict[str, Any] | None = None,
        view_id: str | None = None,
        *,
        strict: bool = True,
    ) -> BotReply:
        """Submit the user's current modal with ``values`` keyed by input ``block_id``.

        ``strict=False`` forges the submission: required fields may stay empty and
        options need not be offered (for tests of the bot's own validation).
        """
        view = self._top_view(user_id, view_id)
        view["state"] = build_state(view, values or {}, self._offered_for(user_id), strict)
        self.ws.view_errors_by_user.pop(user_id, None)
        payload = payloads.view_submission(self.ws, user_id, view, self.triggers.issue(user_id))
        reply = await self._transport().interactive(payload)
        if reply.responded:
            self._apply_response_action(user_id, view, reply.json)
        return reply

    def _apply_response_action(self, user_id: str, view: JSON, body: JSON) -> None:
        action = body.get("response_action")
        try:
            if not action:
                views.close_top(self.ws, user_id)
            elif action == "errors":
                errors = dict(body.get("errors") or {})
                inputs = {b.get("block_id") for b in view["blocks"] if b.get("type") == "input"}
                if not errors or set(errors) - inputs:
                    # Slack refuses errors keyed by anything but the view's input blocks.
                    raise EmulatorError(f"errors must name input blocks {sorted(inputs)}: {errors}")
                self.ws.view_errors_by_user[user_id] = errors
            elif action == "update":
                views.replace(self.ws, view["id"], validate_view(body.get("view")), None)
            elif action == "push":
                views.push(self.ws, user_id, validate_view(body.get("view")))
            elif action == "clear":
                views.clear(self.ws, user_id)
            else:
                raise EmulatorError(f"bot answered unknown response_action {action!r}")
        except ApiError as exc:
            raise EmulatorError(f"Slack would reject the bot's {action!r} answer: {exc}") from exc

    async def redeliver_last(self, retry_num: int) -> BotReply:
        """Slack retrying the last request it sent: over HTTP with ``X-Slack-Retry-Num``, over
        Socket Mode (events only) with ``retry_attempt`` on a new envelope. It passed the
        manifest's gate when it was first sent."""
        transport = self.delivery
        if not isinstance(transport, HttpDelivery | SocketDelivery):
            raise EmulatorError("no delivery configured: give a request_url or socket_mode=True")
        return await transport.redeliver_last(retry_num)

    async def close_view(self, user_id: str) -> BotReply | None:
        """The user presses Close; the bot hears ``view_closed`` only if it asked to."""
        view = self._top_view(user_id)
        views.close_top(self.ws, user_id)
        if not view.get("notify_on_close"):
            return None
        payload = payloads.view_closed(self.ws, user_id, view, is_cleared=False)
        return await self._transport().interactive(payload)

    async def load_options(self, user_id: str, action_id: str, value: str) -> JSON:
        """The user types ``value`` into an external select; return the bot's options."""
        view = self._top_view(user_id)
        try:
            block, element = find_element(view["blocks"], action_id, _EXTERNAL_SELECTS)
        except KeyError:
            raise EmulatorError(f"no external select {action_id!r} in the current view") from None
        if len(value) < int(element.get("min_query_length", 3)):
            raise EmulatorError("Slack sends block_suggestion only after min_query_length chars")
        payload = payloads.block_suggestion(
            self.ws, user_id, view, block["block_id"], action_id, value
        )
        reply = await self._transport().interactive(payload)
        answer = reply.json if reply.responded else {}
        self._offered[(user_id, action_id)] = flatten_options(answer)
        return answer

    def _offered_for(self, user_id: str) -> dict[str, list[JSON]]:
        return {action: opts for (user, action), opts in self._offered.items() if user == user_id}
