"""The training side never drives Kubernetes: deploying is a separate step (spamops.deploy)."""

from __future__ import annotations

import ast
from pathlib import Path

import spamops.training

FORBIDDEN = ("kubernetes", "spamops.deploy", "spamops.serving")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _training_modules() -> list[Path]:
    return sorted(Path(spamops.training.__file__).parent.rglob("*.py"))


def test_no_training_module_imports_a_kubernetes_client_or_the_deploy_side():
    offenders = {
        f"{path.name}: {name}"
        for path in _training_modules()
        for name in _imports(path)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    }
    assert not offenders, f"training must not import {FORBIDDEN}: {sorted(offenders)}"


def test_the_check_sees_the_modules_it_guards():
    names = {path.name for path in _training_modules()}
    assert {"pipeline.py", "train.py", "gate.py", "data.py"} <= names
