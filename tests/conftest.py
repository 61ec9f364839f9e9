"""Fixtures for every test tier."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot import clock

# The databases every test of the store runs on (``database``: SQLite, and PostgreSQL when
# REWARDBOT_TEST_POSTGRES_URL is set), and the whole-bot fixtures, shared by tests/e2e and the
# provider flows in tests/providers.
pytest_plugins = ["tests.databases", "tests.slack_stack"]


def pytest_configure(config: pytest.Config) -> None:
    # ``make test`` runs the rest across processes, then these on their own: the machine busy
    # with other tests would make them miss a deadline that says nothing about the bot.
    config.addinivalue_line(
        "markers", "exclusive(reason): needs the machine to itself (several bots, timing)"
    )


@pytest.fixture
def step_clock(tmp_path: Path) -> Iterator[Callable[[float], None]]:
    """``step_clock(seconds)`` sets this process's wall clock to ``seconds`` from the true time
    (through the test-only offset file; ``step_clock(0)`` sets it right again)."""
    offset = tmp_path / "clock-offset"
    offset.write_text("0")
    clock.use_offset_file(str(offset))

    def step(seconds: float) -> None:
        offset.write_text(str(seconds))

    yield step
    clock.use_offset_file(None)
