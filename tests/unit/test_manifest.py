"""``manifest.yml`` against Slack's manifest schema, and against what the bot's code uses: every
listener it registers must be something Slack delivers to an app with this manifest, and every
Web API method it calls must be allowed by a scope the manifest grants (per Slack's Web API
OpenAPI spec), with no scope granted for nothing."""

import ast
import inspect
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import jsonschema
import pytest
import yaml
from slack_sdk.web.async_client import AsyncWebClient

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "tests/data/manifest.schema.1.0.0.json").read_text())
# Slack's Web API spec (github.com/slackapi/slack-api-specs, MIT, see LICENSE.slack-api-specs).
WEB_API = json.loads((ROOT / "tests/data/slack_web_openapi_v2.json").read_text())

# The spec predates granular bot permissions: it names chat.postMessage's scopes as the classic
# chat:write:bot / chat:write:user, which a bot token holds as chat:write.
GRANULAR = {"chat:write:bot": "chat:write", "chat:write:user": "chat:write"}
# Calls Bolt makes itself, not in our code: auth.test once, to learn the bot's user ID. (Socket
# Mode's apps.connections.open uses the app-level token, whose connections:write scope is not
# a bot scope and is created by hand, as the README says.)
CALLED_BY_BOLT = {"auth.test"}
# Scopes no Web API method of ours needs, and what needs them instead.
SCOPES_FOR_FEATURES = {
    "commands": "the /reward slash command",
    "users:read.email": "users.info includes profile.email only with it (the card's email)",
}
# Scopes Slack requires for each event we subscribe to (none for app_home_opened). An event
# missing here fails the test below: look up its "Required scopes" in Slack's docs and add it.
EVENT_SCOPES: dict[str, set[str]] = {"app_home_opened": set()}
# The modules that are the bot (the emulator plays Slack and is not).
BOT_SOURCES = ("bot", "handlers", "providers")
EXCLUDED = ("bot/offline/emulator/",)


def _manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


def _bot_modules() -> Iterator[tuple[str, ast.Module]]:
    for package in BOT_SOURCES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if not name.startswith(EXCLUDED):
                yield name, ast.parse(path.read_text(), name)


@cache
def _client_methods() -> dict[str, str]:
    """slack_sdk's client method name → the Web API method it calls (``chat_postMessage`` →
    ``chat.postMessage``), read from slack_sdk's own source."""
    methods = {}
    for name, function in inspect.getmembers(AsyncWebClient, inspect.isfunction):
        found = re.search(r'api_call\(\s*"([\w.]+)"', inspect.getsource(function))
        if found and not name.startswith("_"):
            methods[name] = found.group(1)
    return methods


def web_api_methods_called() -> dict[str, set[str]]:
    """Every Web API method the bot's code calls through slack_sdk, with where it does."""
    client_methods = _client_methods()
    called: dict[str, set[str]] = {method: {"Bolt"} for method in CALLED_BY_BOLT}
    for name, module in _bot_modules():
        for node in ast.walk(module):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in client_methods
            ):
                called.setdefault(client_methods[node.func.attr], set()).add(name)
    return called


def listeners_registered() -> dict[str, list[ast.expr]]:
    """``app.<kind>(...)`` registrations in the bot's code, by kind, with their arguments."""
    kinds = {"event", "command", "options", "action", "view", "view_closed", "shortcut", "message"}
    found: dict[str, list[ast.expr]] = {}
    for _name, module in _bot_modules():
        for node in ast.walk(module):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "app"
                and node.func.attr in kinds
            ):
                found.setdefault(node.func.attr, []).extend(node.args[:1])
    return found


def _strings(args: list[ast.expr]) -> set[str]:
    values = {a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    assert len(values) == len(args), "a listener registered with a non-literal name"
    return values


def required_scopes(method: str) -> set[str]:
    """The scopes of which the spec says ``method`` needs one (empty: it needs none)."""
    operations = WEB_API["paths"][f"/{method}"].values()
    scopes = {
        GRANULAR.get(scope, scope)
        for operation in operations
        for requirement in operation.get("security", [])
        for scope in requirement.get("slackAuth", [])
    }
    return scopes - {"none"}


# -- the schema ---------------------------------------------------------------------------


def test_manifest_validates_against_slacks_schema() -> None:
    jsonschema.validate(_manifest(), SCHEMA)


def test_schema_would_catch_a_broken_manifest() -> None:
    broken = _manifest()
    broken["features"]["slash_commands"][0]["should_escape"] = "yes"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_manifest_declares_what_the_bot_uses() -> None:
    manifest = _manifest()
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/reward"
    assert command["should_escape"] is True  # the prefill parser expects <@U…|name>
    settings = manifest["settings"]
    # The bot serves Slack on one path; the host is replaced at install time.
    for url in (
        command["url"],
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
        # external_select searches (block_suggestion) go to the Options Load URL over HTTP.
        settings["interactivity"]["message_menu_options_url"],
    ):
        assert url == "https://rewardbot.example.com/slack/events"
    assert settings["interactivity"]["is_enabled"] is True
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "commands",
        "chat:write",
        "im:write",
        "users:read",
        "users:read.email",
        "usergroups:read",
        "im:history",
    }


# -- listeners against what Slack delivers ----------------------------------------------------


def undelivered(manifest: dict) -> list[str]:
    """What the bot listens for that Slack would not send to an app with ``manifest``."""
    settings = manifest.get("settings", {})
    interactivity = settings.get("interactivity", {})
    listeners = listeners_registered()
    problems = []
    events = _strings(listeners.get("event", []))
    bot_events = set(settings.get("event_subscriptions", {}).get("bot_events", []))
    if events != bot_events:
        problems.append(f"bot_events {sorted(bot_events)} are not the events {sorted(events)}")
    commands = _strings(listeners.get("command", []))
    declared = {c["command"] for c in manifest.get("features", {}).get("slash_commands", [])}
    if commands != declared:
        problems.append(f"declared commands {sorted(declared)} are not {sorted(commands)}")
    interactive = {"action", "view", "view_closed", "shortcut", "options"} & set(listeners)
    if interactive and not (interactivity.get("is_enabled") and interactivity.get("request_url")):
        problems.append(f"{sorted(interactive)} listeners need interactivity and its request_url")
    if "options" in listeners and not interactivity.get("message_menu_options_url"):
        # Over HTTP Slack asks the Options Load URL, not the Request URL, for external_select
        # options; without it a catalog over 100 products cannot be searched.
        problems.append("options listeners need settings.interactivity.message_menu_options_url")
    app_home = manifest.get("features", {}).get("app_home", {})
    if "app_home_opened" in events and not app_home.get("home_tab_enabled"):
        problems.append("app_home_opened publishes a Home tab: features.app_home.home_tab_enabled")
    if "message" in listeners:
        problems.append("app.message needs message.* events and their history scopes")
    return problems


def test_the_scan_finds_the_listeners_the_bot_registers() -> None:
    listeners = listeners_registered()
    assert {"event", "command", "options", "action", "view"} <= set(listeners), listeners
    assert "app_home_opened" in _strings(listeners["event"])


def test_every_listener_the_bot_registers_is_delivered_with_this_manifest() -> None:
    assert undelivered(_manifest()) == []


def test_a_manifest_without_the_options_load_url_would_be_caught() -> None:
    manifest = _manifest()
    del manifest["settings"]["interactivity"]["message_menu_options_url"]
    assert undelivered(manifest) == [
        "options listeners need settings.interactivity.message_menu_options_url"
    ]
    manifest["settings"]["event_subscriptions"]["bot_events"] = []
    assert "bot_events [] are not the events ['app_home_opened']" in undelivered(manifest)


def test_every_subscribed_event_has_its_scopes_granted() -> None:
    manifest = _manifest()
    granted = set(manifest["oauth_config"]["scopes"]["bot"])
    for event in manifest["settings"]["event_subscriptions"]["bot_events"]:
        assert event in EVENT_SCOPES, f"look up {event}'s required scopes in Slack's docs"
        assert EVENT_SCOPES[event] <= granted, event


# -- Web API methods against scopes -----------------------------------------------------------


def missing_scopes(granted: set[str]) -> dict[str, list[str]]:
    """Each method the bot calls that none of ``granted`` allows, with the scopes that would."""
    return {
        method: sorted(required_scopes(method))
        for method in web_api_methods_called()
        if required_scopes(method) and not required_scopes(method) & granted
    }


def test_the_scan_finds_the_web_api_methods_the_bot_calls() -> None:
    # Guards the tests below against a scan that finds nothing and so proves nothing.
    called = web_api_methods_called()
    assert {
        "auth.test",
        "users.info",
        "usergroups.users.list",
        "conversations.open",
        "conversations.history",
        "chat.postMessage",
        "chat.postEphemeral",
        "chat.update",
        "chat.getPermalink",
        "views.open",
        "views.update",
        "views.publish",
    } <= set(called), called
    assert "bot/slack/gateway.py" in called["chat.postMessage"]


def test_every_web_api_method_the_bot_calls_has_a_scope_the_manifest_grants() -> None:
    granted = set(_manifest()["oauth_config"]["scopes"]["bot"])
    assert missing_scopes(granted) == {}, "grant one scope of each in manifest.yml"


def test_a_scope_missing_from_the_manifest_would_be_caught() -> None:
    granted = set(_manifest()["oauth_config"]["scopes"]["bot"])
    assert missing_scopes(granted - {"usergroups:read"}) == {
        "usergroups.users.list": ["usergroups:read"]
    }
    # chat:write stands for the spec's classic chat:write:bot.
    assert "chat.postMessage" in missing_scopes(granted - {"chat:write"})
    assert required_scopes("views.publish") == set()


def test_every_scope_the_manifest_grants_is_needed() -> None:
    granted = set(_manifest()["oauth_config"]["scopes"]["bot"])
    needed = set(SCOPES_FOR_FEATURES)
    for method in web_api_methods_called():
        needed |= required_scopes(method)
    assert granted <= needed, f"granted but unused: {sorted(granted - needed)}"
