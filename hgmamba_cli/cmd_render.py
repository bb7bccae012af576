"""`hgmamba render` (not implemented yet)."""

from __future__ import annotations

from hgmamba_core.errors import HGMambaError


def render() -> None:
    """Not implemented yet."""
    raise HGMambaError("'hgmamba render' is not implemented yet")
