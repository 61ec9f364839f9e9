"""An offline stand-in for Slack: Web API server, workspace state, and a driver that
acts as Slack towards the bot (HTTP or Socket Mode).

Only documented Slack method names, arguments and payload shapes are used, so that
behaviour verified against the emulator carries over to a real workspace.
"""

from bot.offline.emulator.delivery import BotReply
from bot.offline.emulator.driver import Driver
from bot.offline.emulator.emulator import SlackEmulator
from bot.offline.emulator.errors import ApiError, EmulatorError
from bot.offline.emulator.manifest import AppManifest
from bot.offline.emulator.signing import signature, signed_headers
from bot.offline.emulator.webapi import ApiCall
from bot.offline.emulator.workspace import Channel, Ephemeral, Message, User, UserGroup, Workspace

__all__ = [
    "ApiCall",
    "ApiError",
    "AppManifest",
    "BotReply",
    "Channel",
    "Driver",
    "EmulatorError",
    "Ephemeral",
    "Message",
    "SlackEmulator",
    "User",
    "UserGroup",
    "Workspace",
    "signature",
    "signed_headers",
]
