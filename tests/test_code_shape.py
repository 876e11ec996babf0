"""The core stays made of short functions: each fits on a screen (80 lines with its docstring)."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "src" / "napari_deepcube" / "core"
MOST_LINES = 80


def test_no_function_in_core_is_longer_than_a_screen():
    long = []
    for path in sorted(CORE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MOST_LINES:
                    long.append(f"{path.relative_to(CORE)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long
