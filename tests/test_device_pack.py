"""tools/device pack/unpack: the H36M folder a lent GPU trains on matches ../shared to 0.5 mm."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from h36m_tmpdata import write_mini_h36m

TOOLS = Path(__file__).resolve().parents[1] / "tools" / "device"


def _run(script: str, *args) -> None:
    subprocess.run([sys.executable, str(TOOLS / script), *map(str, args)], check=True)


def test_pack_then_unpack_round_trips(h36m_dir, tmp_path):
    src = write_mini_h36m(h36m_dir, tmp_path / "src", frames=200)
    pack, out = tmp_path / "pack", tmp_path / "out"
    _run("pack_h36m.py", "--data", src, "--out", pack)
    _run("unpack_h36m.py", "--pack", pack, "--out", out)
    for name, atol in (("h36m_3d_17j.npz", 0.0005 + 1e-6), ("h36m_sh_2d.npz", 0.0)):
        with np.load(src / name) as a, np.load(out / name) as b:
            assert sorted(a.files) == sorted(b.files)
            for k in a.files:
                assert b[k].dtype == np.float32 and b[k].shape == a[k].shape
                np.testing.assert_allclose(b[k], a[k], rtol=0, atol=atol)
    _run("pack_h36m.py", "--data", src, "--out", tmp_path / "p9", "--sh-subjects", "S9")
    with np.load(tmp_path / "p9" / "h36m_sh_delta.npz") as s:
        assert s.files == ["S9/Directions.54138969"]
