"""``.env.example`` lists every setting (the core's and each provider's) with its default, and
nothing else."""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

import providers  # noqa: F401 - registers every vendor's settings class
from bot.config import Settings
from providers.settings import ProviderSettings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
# `NAME=value` or, for a default left as it is, `# NAME=value`; a comment after two spaces.
LINE = re.compile(r"^(?:# )?([A-Z][A-Z0-9_]+)=(.*?)(?:\s{2,}#.*)?$")


def _settings_classes() -> list[type[BaseSettings]]:
    found: list[type[BaseSettings]] = [Settings]
    pending = list(ProviderSettings.__subclasses__())
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def _shown(field: FieldInfo) -> str:
    """A default as .env.example writes it: nothing for none (or required)."""
    default = field.default
    if default is PydanticUndefined or default is None or default == []:
        return ""
    if isinstance(default, Enum):
        return str(default.value)
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def _expected() -> dict[str, str]:
    expected = {}
    for cls in _settings_classes():
        for field in cls.model_fields.values():
            name = field.validation_alias or field.alias
            assert isinstance(name, str), (cls, field)
            expected[name] = _shown(field)
    return expected


def _listed() -> dict[str, str]:
    listed: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = LINE.match(line)
        if match:
            name, value = match.groups()
            assert name not in listed, f"{name} is listed twice"
            listed[name] = value.strip()
    return listed


def test_every_setting_is_listed_with_its_default() -> None:
    expected, listed = _expected(), _listed()
    assert sorted(set(expected) - set(listed)) == [], "settings missing from .env.example"
    assert sorted(set(listed) - set(expected)) == [], "names in .env.example that are no setting"
    wrong = {
        name: (listed[name], default)
        for name, default in expected.items()
        if listed[name] != default
    }
    assert wrong == {}, "(listed, default)"


def test_the_check_sees_every_provider() -> None:
    names = set(_expected())
    assert {
        "RUNA_API_KEY",
        "CARDPLUSPAY_API_KEY",
        "GIFTRONAUT_CLIENT_ID",
        "UGIFTME_API_KEY",
    } <= names
