"""Functions you can read in one screen: none in ``pipeline/`` over :data:`MAX_LINES` lines (docstring included)."""

from __future__ import annotations

import ast

from tests.conftest import REPO

MAX_LINES = 60


def long_functions(package: str = "pipeline") -> list[str]:
    """``path:line name (N lines)`` of every function or method longer than MAX_LINES."""
    found = []
    for path in sorted((REPO / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_in_the_library_is_longer_than_a_screen() -> None:
    assert long_functions() == []
