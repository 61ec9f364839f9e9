"""Settings, read from the environment and an optional ``.env`` file."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, PlainValidator, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError
from bot.logs import LogFormat, LogLevel
from bot.policy.file import PolicyFile, is_user_id, load_policy
from bot.store.database import DatabaseUrl
from providers import PROVIDERS
from providers.settings import check_api_url, describe_problems


class RunMode(StrEnum):
    """How the bot receives Slack's requests; each needs different credentials."""

    HTTP = "serve"
    SOCKET = "socket"


def _database_url(value: object) -> DatabaseUrl:
    if isinstance(value, DatabaseUrl):
        return value
    if not isinstance(value, str | Path):
        raise ValueError("must be a SQLite file path or a postgresql:// URL")
    return DatabaseUrl.parse(value)


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Everything an admin configures. Field aliases are the public environment names."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    # A SQLite file (the default) or a postgresql:// URL (several processes).
    database: Annotated[DatabaseUrl, PlainValidator(_database_url), NoDecode] = Field(
        default=DatabaseUrl.parse("rewardbot.db"), alias="REWARDBOT_DATABASE"
    )
    # The simplest policy: these people approve everything. REWARDBOT_POLICY replaces it.
    approvers: Annotated[list[str], NoDecode] = Field(default=[], alias="REWARDBOT_APPROVERS")
    policy_file: Path | None = Field(default=None, alias="REWARDBOT_POLICY")
    # How long a job's claim lasts without a heartbeat: after a crash, how soon the next
    # start takes the job over.
    job_lease_seconds: float = Field(default=30.0, gt=0, alias="REWARDBOT_JOB_LEASE_SECONDS")
    # How long finished jobs (done, or given up with their error) are kept before the job
    # runner deletes them; the audit trail of every request is kept regardless. At most a
    # century: beyond, the cutoff date would not exist.
    job_retention_days: int = Field(
        default=30, gt=0, le=36500, alias="REWARDBOT_JOB_RETENTION_DAYS"
    )
    # The longest one Slack Web API call may take. A delivery DM that another run started is
    # waited for this long (and a little more) before it is looked for and sent again.
    slack_timeout_seconds: int = Field(
        default=10, ge=1, le=120, alias="REWARDBOT_SLACK_TIMEOUT_SECONDS"
    )
    # Keep Slack's pace of about one message a second per channel (after a short burst), for
    # every process together. Off only for a Slack that sets no such limit (the emulator).
    slack_pacing: bool = Field(default=True, alias="REWARDBOT_SLACK_PACING")
    # Where `rewardbot socket` answers /healthz, /readyz and /metrics (unset: nowhere).
    # `rewardbot serve` answers them on its own port, and on this one too if it is set.
    health_port: int | None = Field(default=None, ge=1, le=65535, alias="REWARDBOT_HEALTH_PORT")
    log_level: LogLevel = Field(default="INFO", alias="REWARDBOT_LOG_LEVEL")
    # `json`: one JSON object per line, for a log pipeline.
    log_format: LogFormat = Field(default="text", alias="REWARDBOT_LOG_FORMAT")
    # No default: an install that forgot it must not send recipients the sandbox's fake cards.
    providers: Annotated[list[str] | None, NoDecode] = Field(
        default=None, alias="REWARDBOT_PROVIDERS"
    )

    @field_validator("approvers", "providers", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("policy_file", "health_port", mode="before")
    @classmethod
    def _unset_if_empty(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("approvers")
    @classmethod
    def _user_ids(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not is_user_id(v)]
        if bad:
            raise ValueError(f"not Slack user IDs (like U012ABCDEF): {', '.join(bad)}")
        return list(dict.fromkeys(value))

    @field_validator("providers")
    @classmethod
    def _known_providers(cls, value: list[str] | None) -> list[str] | None:
        if not value:
            return None  # blank is unset: start-up then says it is missing
        unknown = [v for v in value if v not in PROVIDERS]
        if unknown:
            raise ValueError(
                f"unknown provider {', '.join(unknown)}; choose from {', '.join(PROVIDERS)}"
            )
        return list(dict.fromkeys(value))

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        # The bot token travels with every call: https only (plain http to this machine, for
        # a local emulator), and never a user name or password in the URL.
        return check_api_url(value) + "/"

    def policy(self) -> PolicyFile:
        """The approval policy: the policy file if one is set, else the approvers list."""
        if self.policy_file is not None:
            if self.approvers:
                raise ConfigError(
                    "Set REWARDBOT_POLICY or REWARDBOT_APPROVERS, not both: the policy file "
                    "names the approvers (approvals.default_approvers and each team's managers)."
                )
            return load_policy(self.policy_file)
        if not self.approvers:
            raise ConfigError(
                "Missing setting REWARDBOT_APPROVERS (comma-separated Slack user IDs of the "
                "approvers) or REWARDBOT_POLICY (the path of a policy file)."
            )
        return PolicyFile.for_approvers(self.approvers)

    def secrets(self) -> list[str]:
        """The value of every credential set here (each ``SecretStr`` setting), so the logs
        can mask them."""
        secrets = [
            value.get_secret_value()
            for value in vars(self).values()
            if isinstance(value, SecretStr)
        ]
        # The database's password, from REWARDBOT_DATABASE's URL (a driver's error may quote it).
        return [*secrets, *filter(None, [self.database.url.password])]

    def enabled_providers(self) -> list[str]:
        """The providers to run with; stops start-up if ``REWARDBOT_PROVIDERS`` is not set."""
        if self.providers is None:
            raise ConfigError(
                "Missing setting REWARDBOT_PROVIDERS (comma-separated, e.g. runa,giftronaut; "
                f"choose from {', '.join(PROVIDERS)}). The sandbox issues no real cards, so it "
                "runs only when named there."
            )
        return self.providers

    def require(self, mode: RunMode) -> None:
        """Stop start-up, naming every setting ``mode`` needs but does not have."""
        self.enabled_providers()
        needed = {"SLACK_BOT_TOKEN": self.slack_bot_token}
        if mode is RunMode.HTTP:
            needed["SLACK_SIGNING_SECRET"] = self.slack_signing_secret
        else:
            needed["SLACK_APP_TOKEN"] = self.slack_app_token
        missing = [
            name for name, value in needed.items() if not value or not value.get_secret_value()
        ]
        if missing:
            raise ConfigError(
                f"Missing setting {', '.join(missing)} (needed by `rewardbot {mode}`)."
            )
        if (
            self.slack_app_token
            and mode is RunMode.SOCKET
            and not (self.slack_app_token.get_secret_value().startswith("xapp-"))
        ):
            raise ConfigError(
                "Malformed setting SLACK_APP_TOKEN: an app-level token starts with xapp-."
            )


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning pydantic's report into one message that names the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(f"Invalid configuration: {describe_problems(exc)}.") from None
