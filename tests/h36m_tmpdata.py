"""Build a small Human3.6M data folder (same file formats as ../shared/data/h36m) for tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np


def write_mini_h36m(h36m_dir: Path, out: Path, frames: int = 600) -> Path:
    """Two real sequences (S1 'Walking 1' train, S9 'Directions' test) from h36m_mini.npz.

    3D and SH detections are the real first `frames` frames; cameras are the real JSON (SH exists
    for camera 54138969 only, as in the mini file).
    """
    out.mkdir(parents=True, exist_ok=True)
    with np.load(h36m_dir / "h36m_mini.npz") as m:
        seqs = ["S1/Walking 1", "S9/Directions"]
        np.savez(out / "h36m_3d_17j.npz", **{s: m[s][:frames] for s in seqs})
        np.savez(
            out / "h36m_sh_2d.npz",
            **{f"{s}.54138969": m[f"sh/{s}.54138969"][:frames] for s in seqs},
        )
    shutil.copy(h36m_dir / "h36m_cameras.json", out / "h36m_cameras.json")
    return out
