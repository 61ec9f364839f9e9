import json
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "tests/data/manifest.schema.1.0.0.json").read_text())


def _manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


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
    assert command["url"].endswith("/slack/events")
    assert manifest["settings"]["interactivity"]["request_url"].endswith("/slack/events")
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "commands",
        "chat:write",
        "im:write",
        "users:read",
        "users:read.email",
        "usergroups:read",
        "im:history",
    }
