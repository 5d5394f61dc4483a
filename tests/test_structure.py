"""The package stays readable: no module over about 500 lines, no class over about 200, no
function over about 60, unless its docstring says why (a sentence starting "Long on
purpose:")."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "reconciler"
LIMITS = {"module": 500, "class": 200, "function": 60}
REASON = "Long on purpose:"


def _excused(node: ast.AST) -> bool:
    doc = ast.get_docstring(node) if isinstance(
        node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) else None
    return doc is not None and REASON in doc


def too_long(path: Path, source: str) -> list[str]:
    tree = ast.parse(source)
    found = []
    lines = len(source.splitlines())
    if lines > LIMITS["module"] and not _excused(tree):
        found.append(f"{path}: module of {lines} lines")
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            kind = "class"
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            kind = "function"
        else:
            continue
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        if length > LIMITS[kind] and not _excused(node):
            found.append(f"{path}:{node.lineno}: {kind} {node.name} of {length} lines")
    return found


def test_no_module_class_or_function_is_too_long_without_a_reason() -> None:
    found = [problem for path in sorted(PACKAGE.rglob("*.py"))
             for problem in too_long(path.relative_to(PACKAGE.parent), path.read_text())]
    assert found == [], "\n".join(found)


def test_the_check_finds_a_long_function_and_accepts_a_reason() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    assert too_long(Path("m.py"), f"def f():\n{body}\n") == ["m.py:1: function f of 62 lines"]
    excused = f'def f():\n    """{REASON} one table."""\n{body}\n'
    assert too_long(Path("m.py"), excused) == []
