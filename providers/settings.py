"""Reading settings from the environment, with errors that name the variable to fix."""

from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from providers.errors import ProviderConfigError

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def describe_problems(exc: ValidationError) -> str:
    """``"RUNA_API_KEY is required; RUNA_API_URL must be ..."`` from a settings ValidationError."""
    problems = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "settings"
        reason = "is required" if error["type"] == "missing" else error["msg"]
        problems.append(f"{name} {reason.removeprefix('Value error, ')}")
    return "; ".join(problems)


def read_settings(model: type[SettingsT]) -> SettingsT:
    """Read a vendor's settings from the environment (and ``.env``)."""
    try:
        return model()
    except ValidationError as exc:
        raise ProviderConfigError(f"Invalid configuration: {describe_problems(exc)}.") from None
