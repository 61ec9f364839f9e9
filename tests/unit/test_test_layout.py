"""Test modules never import each other: a helper two test files need lives in a support module
(``tests/support.py``) or a ``conftest.py`` fixture, so running, moving or deleting one test
file never changes another."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parents[1]


def _is_test_module(dotted: str) -> bool:
    return any(part.startswith("test_") for part in dotted.split("."))


def imported_test_modules(source: str) -> list[str]:
    """The test modules (``test_*``) that ``source`` imports, however it names them."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if _is_test_module(module):
                found.append(module)
            else:
                # ``from tests.e2e import test_policy`` names the test module as an imported name.
                package = module if module.endswith(".") else f"{module}."
                found += [
                    package + alias.name for alias in node.names if _is_test_module(alias.name)
                ]
    return found


def test_no_test_module_imports_another() -> None:
    test_files = sorted(TESTS.rglob("test_*.py"))
    assert len(test_files) > 20, "the tests were not found: this check would prove nothing"
    offenders = {
        str(path.relative_to(TESTS)): imports
        for path in test_files
        if (imports := imported_test_modules(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}, "move shared helpers to a support module or a conftest.py fixture"


def test_every_way_of_importing_a_test_module_is_caught() -> None:
    source = """
import tests.e2e.test_policy
from tests.e2e.test_policy import POLICY
from tests.e2e import test_policy
from . import test_bulk
from .test_bulk import BULK
from tests.support import policy_stack
from tests.e2e.conftest import Stack
import bot.slack.ids
"""
    assert imported_test_modules(source) == [
        "tests.e2e.test_policy",
        "tests.e2e.test_policy",
        "tests.e2e.test_policy",
        ".test_bulk",
        ".test_bulk",
    ]
