"""`hgmamba info` (not implemented yet)."""

from __future__ import annotations

from hgmamba_core.errors import HGMambaError


def info() -> None:
    """Not implemented yet."""
    raise HGMambaError("'hgmamba info' is not implemented yet")
