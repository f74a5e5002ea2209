"""The house rule on code shape, checked: no function in the library layers over MAX_LINES lines."""

import ast

import pytest

from conftest import PROJECT_ROOT

LAYERS = ("scaling", "sweeps", "analysis")
MAX_LINES = 80  # a function longer than this is split into named helpers (nanodo's loop: ~25 lines)


def long_functions(source: str, max_lines: int = MAX_LINES) -> list[tuple[str, int, int]]:
    """(name, first line, length) of every function or method in `source` longer than max_lines lines,
    decorators and docstring included."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = node.end_lineno - first + 1
            if length > max_lines:
                found.append((node.name, first, length))
    return found


def test_the_check_finds_a_long_function_and_passes_a_short_one():
    body = "\n".join(f"    x{i} = {i}" for i in range(80))
    assert long_functions(f"def long():\n{body}\n") == [("long", 1, 81)]
    method_body = body.replace("\n", "\n    ")
    assert long_functions(f"class A:\n    @staticmethod\n    def method():\n    {method_body}\n") == [("method", 2, 82)]
    short = "\n".join(f"    x{i} = {i}" for i in range(79))
    assert long_functions(f"def short():\n{short}\n") == []


@pytest.mark.parametrize("layer", LAYERS)
def test_no_function_in_the_library_layers_is_over_80_lines(layer):
    files = sorted((PROJECT_ROOT / layer).rglob("*.py"))
    assert files, f"no Python files under {layer}/"
    offenders = [f"{path.relative_to(PROJECT_ROOT)}:{line} {name} ({length} lines)"
                 for path in files for name, line, length in long_functions(path.read_text())]
    assert not offenders, "split these into named helpers: " + "; ".join(offenders)
