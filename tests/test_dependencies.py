"""Every third-party module imported anywhere (package, tests, bench, tools) is declared in
pyproject.toml: a fresh `pip install -e ".[dev]"` must be enough (Typer once stopped installing
click, which the CLI imported, and only machines with leftovers kept working)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _deptry(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deptry", "."], cwd=root, capture_output=True, text=True,
        timeout=300, env={"NO_COLOR": "1", "PATH": ""},
    )  # fmt: skip


def test_deptry_finds_no_missing_or_transitive_imports():
    r = _deptry(REPO)
    assert r.returncode == 0, r.stdout + r.stderr


def test_deptry_would_catch_an_undeclared_import(tmp_path):
    """The check above can fail: the same configuration on a copy that imports click."""
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    for pkg in ("hgmamba_core", "hgmamba_cli", "detectors"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "hgmamba_cli" / "app.py").write_text("import click\nimport typer\n")
    r = _deptry(tmp_path)
    assert r.returncode != 0
    assert "'click' imported but" in r.stdout + r.stderr
