"""Pack ../shared/data/h36m into .devcarry/h36m_pack/ for a lent GPU machine (under 64 MiB).

The device tool carries at most 64 MiB of working tree, and ../shared does not travel. World 3D
goes as int16 millimetres (rounding <= 0.5 mm per coordinate), all 50 fps frames; the Stacked
Hourglass detections of all subjects (for `--two-d gt+sh` training and SH evaluation) as int16
pixels (they are integers). Both are stored as frame-to-frame differences, which the zip
compresses about 2x better (~39 MiB in all). The academic-licence data stays in the git-ignored
.devcarry/ folder, never in the repo.

    python tools/device/pack_h36m.py [--data ../shared/data/h36m] [--out .devcarry/h36m_pack]
        [--sh-subjects S9,S11]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np


def frame_deltas(x: np.ndarray) -> np.ndarray:
    """int16 differences along time (the first frame kept whole); exact, or an error."""
    d = np.diff(x.astype(np.int64), axis=0, prepend=np.zeros_like(x[:1], dtype=np.int64))
    if d.size and np.abs(d).max() > np.iinfo(np.int16).max:
        raise SystemExit("a frame-to-frame step does not fit int16: cannot pack these arrays")
    return d.astype(np.int16)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/h36m")
    ap.add_argument("--out", default=".devcarry/h36m_pack")
    ap.add_argument("--sh-subjects", default="", help="comma list (default: all subjects)")
    args = ap.parse_args()
    src, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with np.load(src / "h36m_3d_17j.npz") as z:
        mm = {k: frame_deltas(np.round(z[k] * 1000.0)) for k in z.files}
    np.savez_compressed(out / "h36m_3d_mm_delta.npz", **mm)
    keep = set(args.sh_subjects.split(",")) if args.sh_subjects else None
    with np.load(src / "h36m_sh_2d.npz") as sh:
        picked = {k: sh[k] for k in sh.files if keep is None or k.split("/")[0] in keep}
    if any(not np.array_equal(np.round(v), v) for v in picked.values()):
        raise SystemExit("SH detections are not integer pixels: int16 packing would change them")
    np.savez_compressed(
        out / "h36m_sh_delta.npz", **{k: frame_deltas(v) for k, v in picked.items()}
    )
    shutil.copy(src / "h36m_cameras.json", out / "h36m_cameras.json")
    size = sum(p.stat().st_size for p in out.iterdir()) / 2**20
    print(f"packed {len(mm)} 3D sequences and {len(picked)} SH files into {out} ({size:.1f} MiB)")


if __name__ == "__main__":
    main()
