"""`hgmamba train` (not implemented yet)."""

from __future__ import annotations

from hgmamba_core.errors import HGMambaError


def train() -> None:
    """Not implemented yet."""
    raise HGMambaError("'hgmamba train' is not implemented yet")
