"""The size rules of the package map (README "Package map"): small modules, short functions.

No module of ``publisher/`` over 400 lines and no function over 80, migrations aside (they
are generated history). The limits keep each file readable in one sitting; a module that
outgrows them is split by concern, not by line count.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "publisher"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.relative_to(PACKAGE).parts)


def test_the_package_is_found() -> None:
    # Guards the two tests below against passing on an empty list.
    assert len(_modules()) > 40


def test_no_module_is_over_400_lines() -> None:
    too_long = [
        f"{path.relative_to(PACKAGE.parent)} ({count} lines)"
        for path in _modules()
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert not too_long, "split these modules by concern: " + ", ".join(too_long)


def test_no_function_is_over_80_lines() -> None:
    too_long = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({length} lines)")
    assert not too_long, "split these functions: " + ", ".join(too_long)
