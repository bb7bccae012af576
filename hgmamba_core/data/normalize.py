"""Window-level input normalization, recorded in a checkpoint so train, eval and lift agree.

The lifter's inputs are `poses.normalize_screen` coordinates (the frame width spans 2), so a
person's size and place in them depend on the camera's distance, focal length and framing. H36M
alone covers one narrow band of those; a person 10 m away in a wide-angle phone video is 5x
smaller than anything the lifter trained on. "person" normalization removes that: each window
is moved so its person's box centre (mean over frames) sits at 0 and scaled so the person's size
(median over frames of the box's larger side) equals `ref`, about H36M's median, so a lifter
trained on screen coordinates starts close to where it was. "screen" is the identity (the
shipped file's behaviour). Joints with confidence 0 do not count towards the box.

Checkpoints store {"mode": ..., "ref": ...} under meta["input_norm"]; files without it are
"screen".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hgmamba_core.errors import HGMambaError

NORM_MODES = ("screen", "person")
# Median person size (larger side of the 2D box) of H36M train GT 2D, normalize_screen units.
H36M_PERSON_SIZE = 0.68


@dataclass(frozen=True)
class InputNorm:
    """How windows are normalized before the lifter sees them."""

    mode: str = "screen"
    ref: float = H36M_PERSON_SIZE

    def __post_init__(self) -> None:
        if self.mode not in NORM_MODES:
            raise HGMambaError(f"unknown input normalization '{self.mode}': use screen or person")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_meta(cls, meta: dict | None) -> InputNorm:
        """The normalization a checkpoint's meta records (absent: "screen")."""
        d = (meta or {}).get("input_norm") or {}
        return cls(mode=str(d.get("mode", "screen")), ref=float(d.get("ref", H36M_PERSON_SIZE)))


def window_box(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre (..., 2) and size (...) of the person in windows x (..., T, 17, 3).

    Per frame: the box of the joints with confidence > 0 (all joints when none has); centre =
    mean over frames of the box centres, size = median over frames of the box's larger side.
    """
    xy = np.asarray(x[..., :2], np.float64)
    use = (np.asarray(x[..., 2]) > 0) & np.isfinite(xy).all(-1)
    use |= ~use.any(-1, keepdims=True)  # a frame with no confident joint: use them all
    big = np.where(use[..., None], xy, np.inf)
    small = np.where(use[..., None], xy, -np.inf)
    lo, hi = big.min(-2), small.max(-2)  # (..., T, 2)
    centre = 0.5 * (lo + hi).mean(-2)
    size = np.median((hi - lo).max(-1), axis=-1)
    return centre, np.maximum(size, 1e-3)


def normalize_windows(x: np.ndarray, norm: InputNorm) -> np.ndarray:
    """Apply `norm` to windows (..., T, 17, 3) of normalized x, y + confidence; returns a copy."""
    out = np.array(x, dtype=np.float32, copy=True)
    if norm.mode == "screen":
        return out
    centre, size = window_box(out)
    scale = (norm.ref / size)[..., None, None, None]
    out[..., :2] = ((out[..., :2] - centre[..., None, None, :]) * scale).astype(np.float32)
    return out
