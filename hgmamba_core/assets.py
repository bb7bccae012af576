"""Where the shipped assets/ folder is (weights, demo clip): one lookup for every stage."""

from __future__ import annotations

import os
from pathlib import Path

ASSETS_ENV = "HGMAMBA_ASSETS"


def assets_dirs() -> list[Path]:
    """$HGMAMBA_ASSETS first (installed copies, tests), then the source checkout's assets/."""
    dirs = []
    if os.environ.get(ASSETS_ENV):
        dirs.append(Path(os.environ[ASSETS_ENV]).expanduser())
    dirs.append(Path(__file__).resolve().parents[1] / "assets")
    return dirs
