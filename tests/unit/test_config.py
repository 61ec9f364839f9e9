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
    ):
        monkeypatch.delenv(name, raising=False)


def test_reads_environment_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDBOT_APPROVERS", "U0APPROVER, U0OTHER ,U0APPROVER")
    settings = load_settings()
    assert settings.approvers == ["U0APPROVER", "U0OTHER"]
    assert settings.providers == ["sandbox"]
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.database == Path("rewardbot.db")


def test_reads_a_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("REWARDBOT_APPROVERS=U0FROMFILE\nSLACK_API_URL=http://x/api\n")
    settings = load_settings()
    assert settings.approvers == ["U0FROMFILE"]
    assert settings.slack_api_url == "http://x/api/"


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
    ],
)
def test_bad_settings_stop_with_one_message_naming_them(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_settings().policy()


def test_each_run_mode_names_the_credentials_it_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDBOT_APPROVERS", "U0A")
    settings = load_settings()
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET"):
        settings.require(RunMode.HTTP)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xoxb-wrong-kind")
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN: an app-level token starts with xapp-"):
        load_settings().require(RunMode.SOCKET)
