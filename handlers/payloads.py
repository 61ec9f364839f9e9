"""Pydantic models of the Slack payloads rewardbot reads; anything else in a payload is ignored."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SlashCommand(_Payload):
    user_id: str
    channel_id: str
    trigger_id: str
    text: str = ""


class SlackUserRef(_Payload):
    id: str


class SelectedOption(_Payload):
    value: str


class StateValue(_Payload):
    """One input's value in ``view.state.values``; which field is set depends on the element."""

    type: str
    value: str | None = None
    selected_user: str | None = None
    selected_users: list[str] | None = None
    selected_option: SelectedOption | None = None
    selected_date_time: int | None = None


class SubmittedView(_Payload):
    id: str
    callback_id: str
    private_metadata: str = ""
    state: dict[str, dict[str, dict[str, StateValue]]]


class ViewSubmission(_Payload):
    user: SlackUserRef
    view: SubmittedView

    def input(self, block_id: str) -> StateValue | None:
        """The value of the input block ``block_id`` (each of our input blocks has one element)."""
        elements = self.view.state.get("values", {}).get(block_id, {})
        return next(iter(elements.values()), None)


class Action(_Payload):
    action_id: str
    value: str | None = None


class Container(_Payload):
    channel_id: str | None = None


class BlockActions(_Payload):
    user: SlackUserRef
    trigger_id: str
    container: Container
    actions: list[Action]

    @property
    def channel_id(self) -> str:
        """Where the clicked message is; a DM with the bot when the container has none."""
        return self.container.channel_id or self.user.id


class OpenView(_Payload):
    id: str
    hash: str
    private_metadata: str = ""


class ViewInputChange(_Payload):
    """``block_actions`` from an input of an open modal with ``dispatch_action``."""

    user: SlackUserRef
    view: OpenView
    actions: list[StateValue]


class AppHomeOpened(_Payload):
    """The ``app_home_opened`` event (inside the Events API envelope)."""

    user: str
    tab: str = "home"
