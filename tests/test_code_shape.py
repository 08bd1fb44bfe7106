"""Code you can find and read: the README's code map matches the tree, and no function in ``pipeline/`` is over
:data:`MAX_LINES` lines (docstring included)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

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


def code_map() -> set[Path]:
    """The paths the README's "Code layout" block names. A row at the left margin names a folder; a row indented
    under it an entry of that folder (a sub-folder when it ends in ``/``); the ``*.py`` names on a row, and on the
    deeper-indented rows after it, are files of the last folder named."""
    block = (REPO / "README.md").read_text(encoding="utf-8").split("## Code layout", 1)[1].split("```")[1]
    named: set[Path] = set()
    top = folder = Path()
    for line in block.splitlines()[1:]:
        indent, words = len(line) - len(line.lstrip()), line.split()
        if not words:
            continue
        if indent == 0:
            top = folder = Path(words[0])
            named.add(top)
        elif indent == 2 and words[0].endswith("/"):
            folder = top / words[0]
            named.add(folder)
        elif indent == 2:
            folder = top
        named |= {folder / name for name in re.findall(r"\b\w+\.py\b", line)}
    return named


def test_the_readme_code_map_matches_the_tree() -> None:
    named = code_map()
    assert [str(p) for p in sorted(named) if not (REPO / p).exists()] == []
    modules = {p.relative_to(REPO) for root in ("pipeline", "benchmarks") for p in (REPO / root).rglob("*.py")
               if p.stem not in ("__init__", "__main__")}
    folders = {p.parent for p in modules}
    assert [str(p) for p in sorted((modules | folders) - named)] == []
