"""docs/architecture.md is the map a newcomer works from: its drawing of a request's life and
the files its recipes name must match the code."""

from __future__ import annotations

import re
from pathlib import Path

from bot.domain import TRANSITIONS, Status

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()
README = (ROOT / "README.md").read_text()

_ARROW = re.compile(r"^\s*(\[\*\]|\w+)\s*-->\s*(\[\*\]|\w+)\s*(?::.*)?$")
# A path the docs name: under one of the project's packages, with a file or folder name.
_PATH = re.compile(r"`((?:bot|handlers|providers|tests|bench)/[\w/.{},]*)`")


def _life_of_a_request() -> str:
    section = ARCHITECTURE.split("## The life of a request", 1)[1]
    return section.split("```mermaid", 1)[1].split("```", 1)[0]


def _arrows(drawing: str) -> set[tuple[str, str]]:
    arrows = set()
    for line in drawing.splitlines():
        if line.strip() in ("", "stateDiagram-v2"):
            continue
        match = _ARROW.match(line)
        assert match, f"not an arrow of the drawing: {line!r}"
        arrows.add((match.group(1), match.group(2)))
    return arrows


def test_the_drawing_of_a_request_s_life_is_transitions_arrow_for_arrow() -> None:
    drawn = {(a, b) for a, b in _arrows(_life_of_a_request()) if "[*]" not in (a, b)}
    allowed = {(a.value, b.value) for a, targets in TRANSITIONS.items() for b in targets}
    assert drawn - allowed == set(), "drawn but not allowed by TRANSITIONS"
    assert allowed - drawn == set(), "allowed by TRANSITIONS but not drawn"


def test_the_drawing_starts_where_a_request_starts_and_ends_where_it_rests() -> None:
    arrows = _arrows(_life_of_a_request())
    assert {b for a, b in arrows if a == "[*]"} == {Status.PENDING_APPROVAL.value}
    finals = {status.value for status, targets in TRANSITIONS.items() if not targets}
    assert {a for a, b in arrows if b == "[*]"} == finals


def test_the_readme_links_to_the_one_drawing_instead_of_drawing_its_own() -> None:
    assert "docs/architecture.md#the-life-of-a-request" in README
    assert "──▶" not in README


def _expand(path: str) -> list[str]:
    """``providers/{runa,sandbox}.py`` names two files."""
    if match := re.search(r"\{([^}]*)\}", path):
        return [path[: match.start()] + part + path[match.end() :] for part in match[1].split(",")]
    return [path]


def test_every_file_the_architecture_names_exists() -> None:
    named = [p for raw in _PATH.findall(ARCHITECTURE) for p in _expand(raw.rstrip("/."))]
    assert len(named) > 20
    missing = [p for p in named if not (ROOT / p).exists()]
    assert missing == []
