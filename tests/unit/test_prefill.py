import pytest

from bot.slack.modals import RewardPrefill
from handlers.commands.reward import parse_prefill


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", RewardPrefill()),
        (
            "<@U123ABC|jane> 25 for shipping the release",
            RewardPrefill(recipient_id="U123ABC", amount="25", message="shipping the release"),
        ),
        ("<@U123ABC> £25.50", RewardPrefill(recipient_id="U123ABC", amount="£25.50")),
        ("25 GBP for the demo", RewardPrefill(amount="25 GBP", message="the demo")),
        ("great work on the launch", RewardPrefill(message="great work on the launch")),
        ("<@U1|a> <!channel> 5", RewardPrefill(recipient_id="U1", message="<!channel> 5")),
        ("25abc", RewardPrefill(message="25abc")),
    ],
)
def test_prefill_reads_recipient_amount_and_message(text: str, expected: RewardPrefill) -> None:
    assert parse_prefill(text) == expected
