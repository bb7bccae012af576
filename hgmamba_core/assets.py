"""Where the shipped assets/ folder is (weights, demo clip): one lookup for every stage."""

from __future__ import annotations

import os
from pathlib import Path

ASSETS_ENV = "HGMAMBA_ASSETS"
CACHE_ENV = "HGMAMBA_CACHE"


def assets_dirs() -> list[Path]:
    """$HGMAMBA_ASSETS first (installed copies, tests), then the source checkout's assets/."""
    dirs = []
    if os.environ.get(ASSETS_ENV):
        dirs.append(Path(os.environ[ASSETS_ENV]).expanduser())
    dirs.append(Path(__file__).resolve().parents[1] / "assets")
    return dirs


def cache_root() -> Path:
    """Where one-time builds are kept (scan kernel, detector exports): $HGMAMBA_CACHE, else
    $XDG_CACHE_HOME/hgmamba, else ~/.cache/hgmamba."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hgmamba"
