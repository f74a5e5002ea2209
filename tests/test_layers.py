"""The layers import downward only: scaling <- sweeps <- analysis <- scaling_cli (the command line).
Read from the source with `ast`, so a lazy import inside a function counts as much as one at the top."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("scaling", "sweeps", "analysis", "scaling_cli")
# What each package may import from the project (itself included); scaling_cli sits above all of them.
ALLOWED = {"scaling": {"scaling"}, "sweeps": {"scaling", "sweeps"},
           "analysis": {"scaling", "sweeps", "analysis"}, "scaling_cli": set(PROJECT)}
MODULE_NAME = re.compile(rf"({'|'.join(PROJECT)})(\.\w+)+")


def imported_packages(source: str) -> set[str]:
    """Top-level project packages a module imports: import statements, and module names written as strings
    (importlib.import_module("analysis.cli"), a registry of "sweeps.cli", ...)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_NAME.fullmatch(node.value):
            found.add(node.value.split(".")[0])
    return found & set(PROJECT)


def upward_imports(root: Path) -> list[str]:
    """'path: imports package' for every import of a layer above the module's own."""
    found = []
    for package, allowed in ALLOWED.items():
        for path in sorted((root / package).rglob("*.py")):
            found += [f"{path.relative_to(root)}: imports {name}"
                      for name in sorted(imported_packages(path.read_text()) - allowed)]
    return found


def test_no_layer_imports_a_layer_above_it():
    assert (ROOT / "scaling_cli" / "main.py").is_file()  # the tree walked is this checkout
    assert upward_imports(ROOT) == []


def test_the_check_finds_an_upward_import_in_any_form(tmp_path):
    for package in PROJECT:
        (tmp_path / package).mkdir()
    (tmp_path / "scaling" / "a.py").write_text("def f():\n    from analysis.fitting import fit\n")
    (tmp_path / "scaling" / "b.py").write_text("import importlib\nMODULES = ('scaling.train_cli', 'sweeps.cli')\n"
                                               "importlib.import_module(MODULES[1])\n")
    (tmp_path / "sweeps" / "c.py").write_text("import analysis.loading as load\nfrom scaling import io\n")
    (tmp_path / "analysis" / "d.py").write_text("from scaling_cli.tables import parse_floats\nimport sweeps\n")
    (tmp_path / "scaling_cli" / "e.py").write_text("import analysis, sweeps, scaling\n")
    assert upward_imports(tmp_path) == ["scaling/a.py: imports analysis", "scaling/b.py: imports sweeps",
                                        "sweeps/c.py: imports analysis", "analysis/d.py: imports scaling_cli"]
