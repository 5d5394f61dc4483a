"""The import contracts of pyproject.toml mean something: each one fails when the code breaks
it. The package is copied to a temporary directory, one import is added that breaks exactly
the rule under test, and `lint-imports` (with that copy first on the path) must name the
contract as broken; the copy without the import passes them all."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def copy_of_the_package(tmp: Path) -> Path:
    shutil.copytree(ROOT / "reconciler", tmp / "reconciler",
                    ignore=shutil.ignore_patterns("__pycache__", "schema"))
    shutil.copy(ROOT / "pyproject.toml", tmp / "pyproject.toml")
    return tmp / "reconciler"


def module_file(package: Path, dotted: str) -> Path:
    """The file of `reconciler.x` whether it is a module or a package."""
    parts = dotted.split(".")[1:]
    as_module = package.joinpath(*parts).with_suffix(".py")
    return as_module if as_module.exists() else package.joinpath(*parts, "__init__.py")


def lint_imports(tmp: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tmp)}
    args = [str(LINT_IMPORTS), "--no-cache", "--no-logo"]
    for contract in contracts:
        args += ["--contract", contract]
    return subprocess.run(args, cwd=tmp, env=env, capture_output=True, text=True, timeout=120)


def test_the_copy_of_the_real_tree_keeps_every_contract(tmp_path: Path) -> None:
    copy_of_the_package(tmp_path)
    run = lint_imports(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout
    assert "Only reconciler.jetstream imports nats KEPT" in run.stdout


#: contract id, its name, the module that gets the import (None: a new module), the import
VIOLATIONS = [
    pytest.param("nats", "Only reconciler.jetstream imports nats", None, "import nats",
                 id="a-new-module-imports-nats"),
    pytest.param("nats", "Only reconciler.jetstream imports nats", "reconciler.report",
                 "import nats.errors", id="report-imports-nats"),
    pytest.param("pure-core", "The core is pure", "reconciler.plan", "import time",
                 id="plan-reads-the-clock"),
    pytest.param("pure-core", "The core is pure", "reconciler.plan", "import click",
                 id="plan-renders"),
    pytest.param("pure-core", "The core is pure", "reconciler.model", "import structlog",
                 id="model-logs"),
    pytest.param("pure-core", "The core is pure", "reconciler.fields", "import jsonschema",
                 id="fields-validates"),
    pytest.param("pure-core", "The core is pure", "reconciler.ledger",
                 "import prometheus_client", id="ledger-counts"),
    pytest.param("adapters", "Manifests and the JetStream adapter are independent",
                 "reconciler.manifest", "import reconciler.jetstream",
                 id="manifest-imports-jetstream"),
    pytest.param("adapters", "Manifests and the JetStream adapter are independent",
                 "reconciler.jetstream", "import reconciler.manifest",
                 id="jetstream-imports-manifest"),
    pytest.param("layers", "Layers:", "reconciler.plan", "import reconciler.reconcile",
                 id="core-imports-a-pass"),
    pytest.param("layers", "Layers:", "reconciler.reconcile", "import reconciler.daemon",
                 id="a-pass-imports-watch-mode"),
    pytest.param("layers", "Layers:", "reconciler.daemon", "import reconciler.cli",
                 id="watch-mode-imports-the-cli"),
]


@pytest.mark.parametrize(("contract", "name", "module", "statement"), VIOLATIONS)
def test_each_contract_fails_on_a_deliberate_violation(
    tmp_path: Path, contract: str, name: str, module: str | None, statement: str
) -> None:
    package = copy_of_the_package(tmp_path)
    kept = lint_imports(tmp_path, contract)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    target = package / "newcomer.py" if module is None else module_file(package, module)
    before = target.read_text() if target.exists() else ""
    target.write_text(before + f"\n{statement}  # noqa\n")
    broken = lint_imports(tmp_path, contract)
    assert broken.returncode != 0
    assert f"{name}" in broken.stdout and "BROKEN" in broken.stdout, broken.stdout
