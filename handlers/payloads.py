"""Pydantic models of the Slack payloads rewardbot reads; anything else in a payload is ignored."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.slack.ids import RequestModalMetadata


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def request_id_in(value: str | None) -> int | None:
    """The reward request id a button's value holds, or ``None`` if it holds none."""
    return int(value) if value and value.isdecimal() and len(value) < 19 else None


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


class _ViewMetadata(_Payload):
    private_metadata: str = ""


class AnyPayload(_Payload):
    """What any payload says of itself, to label the logs of its handling: its kind (a
    ``type``, or a slash ``command``), the Events API's ``event_id``, and the reward request it
    is about (a button's value, a request modal's metadata), if any."""

    type: str | None = None
    command: str | None = None
    event_id: str | None = None
    actions: list[Action] = []
    view: _ViewMetadata | None = None

    @property
    def reward_id(self) -> int | None:
        if self.actions:
            return request_id_in(self.actions[0].value)
        if self.view is not None and self.view.private_metadata:
            try:
                metadata = RequestModalMetadata.model_validate_json(self.view.private_metadata)
            except ValidationError:
                return None  # another modal's metadata (the reward form's)
            return metadata.request_id
        return None
