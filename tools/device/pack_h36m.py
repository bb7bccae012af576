"""Pack ../shared/data/h36m into .devcarry/h36m_pack/ for a lent GPU machine (under 64 MiB).

The device tool carries at most 64 MiB of working tree, and ../shared does not travel. World 3D
goes as int16 millimetres (rounding <= 0.5 mm per coordinate), all 50 fps frames; the Stacked
Hourglass detections of the test subjects S9 and S11 as int16 pixels (they are integers). The
academic-licence data stays in the git-ignored .devcarry/ folder, never in the repo.

    python tools/device/pack_h36m.py [--data ../shared/data/h36m] [--out .devcarry/h36m_pack]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/h36m")
    ap.add_argument("--out", default=".devcarry/h36m_pack")
    args = ap.parse_args()
    src, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with np.load(src / "h36m_3d_17j.npz") as z:
        mm = {k: np.round(z[k] * 1000.0).astype(np.int16) for k in z.files}
    np.savez_compressed(out / "h36m_3d_mm.npz", **mm)
    with np.load(src / "h36m_sh_2d.npz") as sh:
        test = {k: sh[k] for k in sh.files if k.split("/")[0] in ("S9", "S11")}
    packed = {k: v.astype(np.int16) for k, v in test.items()}
    if any(not np.array_equal(packed[k], test[k]) for k in test):
        raise SystemExit("SH detections are not integer pixels: int16 packing would change them")
    np.savez_compressed(out / "h36m_sh_test.npz", **packed)
    shutil.copy(src / "h36m_cameras.json", out / "h36m_cameras.json")
    size = sum(p.stat().st_size for p in out.iterdir()) / 2**20
    print(f"packed {len(mm)} 3D sequences and {len(packed)} SH files into {out} ({size:.1f} MiB)")


if __name__ == "__main__":
    main()
