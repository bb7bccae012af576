"""On the GPU machine: rebuild a folder `load_h36m` reads (float32 metres) from the int16 pack.

python3 tools/device/unpack_h36m.py [--pack .devcarry/h36m_pack] [--out /tmp/h36m]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np


def undelta(d: np.ndarray) -> np.ndarray:
    """float32 values back from pack_h36m's int16 frame-to-frame differences."""
    return np.cumsum(d.astype(np.int64), axis=0).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", default=".devcarry/h36m_pack")
    ap.add_argument("--out", default="/tmp/h36m")
    args = ap.parse_args()
    pack, out = Path(args.pack), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not (pack / "h36m_3d_mm_delta.npz").is_file():
        raise SystemExit(f"no h36m_3d_mm_delta.npz in {pack}: run tools/device/pack_h36m.py here")
    with np.load(pack / "h36m_3d_mm_delta.npz") as z:
        np.savez(out / "h36m_3d_17j.npz", **{k: undelta(z[k]) / 1000.0 for k in z.files})
    with np.load(pack / "h36m_sh_delta.npz") as s:
        np.savez(out / "h36m_sh_2d.npz", **{k: undelta(s[k]) for k in s.files})
    shutil.copy(pack / "h36m_cameras.json", out / "h36m_cameras.json")
    print(f"unpacked into {out}")


if __name__ == "__main__":
    main()
