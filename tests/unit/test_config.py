from pathlib import Path

import pytest

from bot.config import RunMode, load_settings
from bot.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "SLACK_API_URL",
        "REWARDBOT_DATABASE",
        "REWARDBOT_APPROVERS",
        "REWARDBOT_POLICY",
        "REWARDBOT_PROVIDERS",
        "REWARDBOT_JOB_RETENTION_DAYS",
    ):
        monkeypatch.delenv(name, raising=False)


def test_reads_environment_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDBOT_APPROVERS", "U0APPROVER, U0OTHER ,U0APPROVER")
    settings = load_settings()
    assert settings.approvers == ["U0APPROVER", "U0OTHER"]
    assert settings.providers is None  # no silent sandbox: serve and socket refuse to start
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.database.sqlite_path == Path("rewardbot.db")
    assert settings.job_retention_days == 30


def test_reads_a_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "REWARDBOT_APPROVERS=U0FROMFILE\nSLACK_API_URL=http://127.0.0.1:8080/api\n"
    )
    settings = load_settings()
    assert settings.approvers == ["U0FROMFILE"]
    assert settings.slack_api_url == "http://127.0.0.1:8080/api/"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "Missing setting REWARDBOT_APPROVERS .* or REWARDBOT_POLICY"),
        ({"REWARDBOT_APPROVERS": " , "}, "Missing setting REWARDBOT_APPROVERS"),
        (
            {"REWARDBOT_APPROVERS": "U0A", "REWARDBOT_POLICY": "rewardbot.toml"},
            "Set REWARDBOT_POLICY or REWARDBOT_APPROVERS, not both",
        ),
        ({"REWARDBOT_POLICY": "missing.toml"}, "Cannot read policy file missing.toml"),
        ({"REWARDBOT_APPROVERS": "alice"}, "REWARDBOT_APPROVERS not Slack user IDs .*alice"),
        (
            {"REWARDBOT_APPROVERS": "U0A", "REWARDBOT_PROVIDERS": "sandbox,acme"},
            "REWARDBOT_PROVIDERS unknown provider acme",
        ),
        ({"REWARDBOT_APPROVERS": "U0A", "SLACK_API_URL": "slack.com"}, "SLACK_API_URL must be"),
        # The bot token travels with every call: never in clear text over a network...
        (
            {"REWARDBOT_APPROVERS": "U0A", "SLACK_API_URL": "http://slack.example.com/api/"},
            "SLACK_API_URL must be an http.s. URL: https, or plain http to a loopback host",
        ),
        # ...and a URL carrying credentials would show them wherever it is shown.
        (
            {"REWARDBOT_APPROVERS": "U0A", "SLACK_API_URL": "https://me:pw@slack.com/api/"},
            "SLACK_API_URL must not carry a user name or password",
        ),
        # Only the URL's own password part is hidden where the database is named.
        (
            {"REWARDBOT_APPROVERS": "U0A", "REWARDBOT_DATABASE": "postgresql://h/db?password=pw"},
            "REWARDBOT_DATABASE carries a password in its query",
        ),
        (
            {"REWARDBOT_APPROVERS": "U0A", "REWARDBOT_DATABASE": "postgresql://u:p@ss@h/db"},
            "REWARDBOT_DATABASE has an @ that is not escaped",
        ),
    ],
)
def test_bad_settings_stop_with_one_message_naming_them(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_settings().policy()


def test_the_database_password_is_masked_in_every_log_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REWARDBOT_DATABASE", "postgresql://bot:s3cret%2Fpw@db.internal/rewards")
    assert "s3cret/pw" in load_settings().secrets()


def test_finished_jobs_are_kept_for_the_days_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDBOT_JOB_RETENTION_DAYS", "7")
    assert load_settings().job_retention_days == 7


@pytest.mark.parametrize("days", ["0", "-1", "soon"])
def test_a_retention_that_is_not_a_positive_number_of_days_is_refused(
    monkeypatch: pytest.MonkeyPatch, days: str
) -> None:
    monkeypatch.setenv("REWARDBOT_JOB_RETENTION_DAYS", days)
    with pytest.raises(ConfigError, match="REWARDBOT_JOB_RETENTION_DAYS"):
        load_settings()


@pytest.mark.parametrize("mode", [RunMode.HTTP, RunMode.SOCKET])
def test_serving_needs_the_providers_named_the_sandbox_included(
    monkeypatch: pytest.MonkeyPatch, mode: RunMode
) -> None:
    monkeypatch.setenv("REWARDBOT_APPROVERS", "U0A")
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s",
        "SLACK_APP_TOKEN": "xapp-1",
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=r"Missing setting REWARDBOT_PROVIDERS .*sandbox"):
        load_settings().require(mode)
    monkeypatch.setenv("REWARDBOT_PROVIDERS", "sandbox")
    load_settings().require(mode)


def test_each_run_mode_names_the_credentials_it_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDBOT_APPROVERS", "U0A")
    monkeypatch.setenv("REWARDBOT_PROVIDERS", "sandbox")
    settings = load_settings()
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET"):
        settings.require(RunMode.HTTP)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xoxb-wrong-kind")
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN: an app-level token starts with xapp-"):
        load_settings().require(RunMode.SOCKET)
