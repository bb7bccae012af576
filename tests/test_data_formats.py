"""Community file formats written in their exact structure and read back: VideoPose3D, P-STMO 3DHP."""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest

from hgmamba_core.data.mpi3dhp import load_3dhp_test, load_3dhp_train
from hgmamba_core.data.safe_npz import load_npz_dicts
from hgmamba_core.data.vp3d import VP3D_17_FROM_32, load_vp3d, read_positions_2d, read_positions_3d
from hgmamba_core.errors import HGMambaError
from hgmamba_core.skeleton import H36M_FROM_3DHP


def _save_obj_npz(path, **entries):
    """As VideoPose3D / P-STMO do: np.savez with dict values (stored as 0-d object arrays)."""
    np.savez_compressed(path, **entries)


def test_vp3d_roundtrip(h36m_dir, h36m_mini, tmp_path):
    world17 = h36m_mini["S9/Directions"][:50]
    world32 = np.zeros((50, 32, 3), np.float32)
    world32[:, list(VP3D_17_FROM_32)] = world17
    world32[:, [4, 5, 9, 10, 11, 16, 20, 21, 22, 23, 24, 28, 29, 30, 31]] = 99.0  # dropped joints
    _save_obj_npz(tmp_path / "data_3d_h36m.npz", positions_3d={"S9": {"Directions": world32}})
    gt2d = h36m_mini["S9/Directions.54138969"][:40]  # 2D shorter than 3D: 3D is cut
    cams = [gt2d + 1.0, gt2d + 2.0, gt2d + 3.0, gt2d + 4.0]
    _save_obj_npz(
        tmp_path / "data_2d_h36m_test.npz",
        positions_2d={"S9": {"Directions": cams}},
        metadata={"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[4, 5], [1, 2]]},
    )
    pos3d = read_positions_3d(tmp_path / "data_3d_h36m.npz")
    np.testing.assert_array_equal(pos3d["S9"]["Directions"], world17)
    pos2d, meta = read_positions_2d(tmp_path / "data_2d_h36m_test.npz")
    assert meta["layout_name"] == "h36m" and len(pos2d["S9"]["Directions"]) == 4

    camjson = h36m_dir / "h36m_cameras.json"
    gt = load_vp3d(tmp_path / "data_3d_h36m.npz", camjson, ["S9"])
    assert [c.name for c in gt][0] == "S9/Directions.54138969" and gt[0].num_frames == 50
    assert np.abs(gt[0].keypoints - h36m_mini["S9/Directions.54138969"][:50]).max() < 1e-3
    det = load_vp3d(
        tmp_path / "data_3d_h36m.npz", camjson, ["S9"], tmp_path / "data_2d_h36m_test.npz"
    )
    assert len(det) == 4 and det[2].num_frames == 40
    np.testing.assert_allclose(det[2].keypoints, gt2d + 3.0)
    np.testing.assert_allclose(det[0].joints3d, gt[0].joints3d[:40])


def test_3dhp_train_and_test_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    j3 = rng.normal(0, 300, (30, 17, 3)).astype(np.float32)
    j3[..., 2] += 4000
    j2 = rng.uniform(0, 2048, (30, 17, 2)).astype(np.float32)
    train = {
        ("S1", "Seq1"): [
            {0: {"data_3d": j3, "data_2d": j2}, 2: {"data_3d": j3[:10], "data_2d": j2[:10]}}
        ],
        ("S2", "Seq2"): [{4: {"data_3d": j3[:5], "data_2d": j2[:5]}}],
    }
    _save_obj_npz(tmp_path / "data_train_3dhp.npz", data=train)
    valid = np.zeros(30)
    valid[::2] = 1
    test = {f"TS{i}": {"data_3d": j3, "data_2d": j2, "valid": valid} for i in range(1, 7)}
    _save_obj_npz(tmp_path / "data_test_3dhp.npz", data=test)

    clips = load_3dhp_train(tmp_path / "data_train_3dhp.npz")
    assert [c.name for c in clips] == ["S1/Seq1.0", "S1/Seq1.2", "S2/Seq2.4"]
    assert [c.num_frames for c in clips] == [30, 10, 5]
    # reordered to H36M-17: H36M pelvis (0) is 3DHP joint 14; metres
    np.testing.assert_allclose(clips[0].joints3d[:, 0], j3[:, 14] / 1000, rtol=1e-6)
    np.testing.assert_allclose(clips[0].keypoints, j2[:, list(H36M_FROM_3DHP)])
    assert clips[0].size == (2048, 2048)

    ts = load_3dhp_test(tmp_path / "data_test_3dhp.npz")
    assert [c.name for c in ts] == ["TS1", "TS2", "TS3", "TS4", "TS5", "TS6"]
    assert ts[4].size == (1920, 1080) and ts[0].size == (2048, 2048)
    assert ts[0].valid.sum() == 15
    with pytest.raises(HGMambaError, match="no test sequence"):
        load_3dhp_test(tmp_path / "data_test_3dhp.npz", ["TS9"])


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_safe_loader_refuses_foreign_pickles(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, data=np.array({"x": _Evil()}, dtype=object))
    with pytest.raises(HGMambaError, match="refusing to load"):
        load_npz_dicts(bad)
    notzip = tmp_path / "plain.npz"
    notzip.write_bytes(b"not a zip")
    with pytest.raises(HGMambaError, match="not an .npz"):
        load_npz_dicts(notzip)
    odd = tmp_path / "odd.npz"
    with zipfile.ZipFile(odd, "w") as zf:
        zf.writestr("evil.pkl", b"x")
    with pytest.raises(HGMambaError, match="not .npy"):
        load_npz_dicts(odd)
    # a dict holding something other than arrays is rejected with a readable message
    _save_obj_npz(tmp_path / "d3.npz", positions_3d={"S1": {"Walking": "oops"}})
    with pytest.raises(HGMambaError, match="numeric numpy array"):
        read_positions_3d(tmp_path / "d3.npz")
