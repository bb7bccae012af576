"""`hgmamba eval` (not implemented yet)."""

from __future__ import annotations

from hgmamba_core.errors import HGMambaError


def evaluate() -> None:
    """Not implemented yet."""
    raise HGMambaError("'hgmamba eval' is not implemented yet")
