"""Rooms a newcomer can read in one sitting: no class over 300 lines and no function over 60
in the package code, unless its docstring says why it must stay whole ("Kept whole: …")."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "handlers", "providers")
LIMITS = {ast.ClassDef: 300, ast.FunctionDef: 60, ast.AsyncFunctionDef: 60}
EXCUSE = "Kept whole:"


def _oversized(root: Path, packages: tuple[str, ...]) -> list[str]:
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                limit = LIMITS.get(type(node))
                if limit is None:
                    continue
                assert isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > limit and EXCUSE not in (ast.get_docstring(node) or ""):
                    where = path.relative_to(root)
                    found.append(f"{where}:{node.lineno} {node.name} is {length} lines")
    return found


def test_no_class_or_function_outgrows_its_room() -> None:
    assert _oversized(ROOT, PACKAGES) == []


def test_the_check_sees_an_oversized_function_and_honours_a_reason(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    (tmp_path / "bot").mkdir()
    (tmp_path / "bot" / "long.py").write_text(
        f"def long() -> None:\n{body}\n\n\n"
        f'def whole() -> None:\n    """{EXCUSE} one transaction."""\n{body}\n'
    )
    assert _oversized(tmp_path, ("bot",)) == ["bot/long.py:1 long is 61 lines"]
