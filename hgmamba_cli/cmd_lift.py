"""`hgmamba lift` (not implemented yet)."""

from __future__ import annotations

from hgmamba_core.errors import HGMambaError


def lift() -> None:
    """Not implemented yet."""
    raise HGMambaError("'hgmamba lift' is not implemented yet")
