"""Imports run one way, down the layers (ARCHITECTURE.md): a module that imports a package above its
own fails here, with the file, the line and the import named."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# package -> layer; higher numbers sit on top and may import lower ones
LAYERS = {"core": 0, "features": 1, "models": 2, "oof": 3, "stacking": 4, "submission": 5, "synthetic": 5}


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import of a project package, lazy ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(node.lineno, name.split(".")[0]) for name in names if name.split(".")[0] in LAYERS]
    return found


def violations() -> list[str]:
    bad = []
    for package, layer in LAYERS.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, target in imported_packages(path):
                if target != package and LAYERS[target] >= layer:
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports {target} (layer {LAYERS[target]}) "
                               f"from {package} (layer {layer})")
    return bad


def test_every_import_runs_down_the_layers():
    assert violations() == []


def test_every_package_has_a_layer():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert packages == set(LAYERS)


def test_the_checker_catches_an_upward_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("import os\nfrom stacking.run import run_stack\n\ndef f():\n    import oof.cv\n")
    assert imported_packages(module) == [(2, "stacking"), (5, "oof")]
