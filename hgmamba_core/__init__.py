"""hgmamba core: 2D keypoints -> 3D poses with the HGMamba lifter.

`HGMamba` (the Python API: video / keypoints -> `LiftResult`), `build_model` and `load_lifter`
are imported lazily so that light modules (skeleton, poses) don't pull in torch. (The lifter's
torch module is `hgmamba_core.model.HGMamba`; `hgmamba_core.HGMamba` is the API around it.)
"""

from __future__ import annotations

from typing import Any

__all__ = ["HGMamba", "LiftResult", "build_model", "load_lifter"]


def __getattr__(name: str) -> Any:
    if name in ("HGMamba", "LiftResult"):
        from hgmamba_core import api

        return getattr(api, name)
    if name == "build_model":
        from hgmamba_core.model.hgmamba import build_model

        return build_model
    if name == "load_lifter":
        from hgmamba_core.model.checkpoint import load_lifter

        return load_lifter
    raise AttributeError(f"module 'hgmamba_core' has no attribute {name!r}")
