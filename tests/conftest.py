"""Fixtures for every test tier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import clock

# The whole-bot fixtures, shared by tests/e2e and the provider flows in tests/providers.
pytest_plugins = ["tests.slack_stack"]


@pytest.fixture
def step_clock(tmp_path: Path) -> Iterator[Path]:
    """Write seconds into this file to step this process's wall clock (the test-only hook)."""
    offset = tmp_path / "clock-offset"
    offset.write_text("0")
    clock.use_offset_file(str(offset))
    yield offset
    clock.use_offset_file(None)
