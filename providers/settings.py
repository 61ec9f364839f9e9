"""Reading settings from the environment, with errors that name the variable to fix.

A vendor's settings subclass :class:`ProviderSettings` and type their fields with the shared
rules below, so every adapter checks its URL, secrets and optional values the same way.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from providers.errors import ProviderConfigError

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

_LOOPBACK_NAMES = frozenset({"localhost"})


class ProviderSettings(BaseSettings):
    """A vendor's environment settings (and ``.env``). Field aliases are the public names."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (``127.0.0.0/8``, ``::1``)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_api_url(value: str) -> str:
    """An API base URL without a trailing slash: https, or plain http to a loopback host only
    (a local test double), so credentials never cross a network in clear."""
    url = value.strip()
    parts = urlsplit(url)
    if parts.username or parts.password:
        # It would show wherever the URL does (an adapter's repr, a log line).
        raise ValueError("must not carry a user name or password; use the credential variables")
    host = parts.hostname
    if host and (parts.scheme == "https" or (parts.scheme == "http" and is_loopback(host))):
        return url.rstrip("/")
    raise ValueError("must be an http(s) URL: https, or plain http to a loopback host only")


def check_secret(value: SecretStr) -> SecretStr:
    """A credential without surrounding whitespace; blank is an error."""
    secret = value.get_secret_value().strip()
    if not secret:
        raise ValueError("must not be empty")
    return SecretStr(secret)


def blank_is_unset(value: object) -> object:
    """An optional variable set to blank (``RUNA_WEBHOOK_SECRET=``) counts as not set."""
    return None if isinstance(value, str) and not value.strip() else value


# Field types: ``api_url: ApiUrl = Field(default=..., alias=...)``.
ApiUrl = Annotated[str, AfterValidator(check_api_url)]
Secret = Annotated[SecretStr, AfterValidator(check_secret)]
# Metadata for optional fields: ``Annotated[SecretStr | None, BlankIsUnset]``.
BlankIsUnset = BeforeValidator(blank_is_unset)


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
