"""The CLI asks OpenMP for a passive wait before torch loads, unless the user chose one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROBE = (
    "import os, sys; from hgmamba_cli import app; sys.argv = ['hgmamba', '--help']\n"
    "try:\n    app.main(['--help'])\nexcept SystemExit:\n    pass\n"
    "print('torch' in sys.modules, os.environ.get('OMP_WAIT_POLICY'))"
)


def _probe(env: dict[str, str]) -> str:
    full = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    full.update(env, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=full, capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def test_cli_sets_passive_wait_before_torch_and_keeps_the_users_choice():
    assert _probe({}) == "False PASSIVE"
    assert _probe({"OMP_WAIT_POLICY": "ACTIVE"}) == "False ACTIVE"
