"""Exporters: npy/json/csv round trips with NaN, BVH parsed by the PyPI `bvh` package and
replayed by an independent forward-kinematics routine written here."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from bvh import Bvh

from hgmamba_core.errors import HGMambaError
from hgmamba_core.export import (
    euler_zxy_from_matrix,
    export_all,
    fill_nearest_valid,
    read_pose3d,
    write_bvh,
)
from hgmamba_core.poses import Pose3DSequence
from hgmamba_core.skeleton import H36M_NAMES, H36M_PARENTS, NUM_JOINTS

# BVH (X, Y, Z) -> ours (x, y, z) = (X, -Z, Y): the inverse of the documented export mapping.
BVH_TO_OURS = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def _elementary(axis: str, deg: np.ndarray) -> np.ndarray:
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    if axis == "X":
        m = [[o, z, z], [z, c, -s], [z, s, c]]
    elif axis == "Y":
        m = [[c, z, s], [z, o, z], [-s, z, c]]
    else:
        m = [[c, -s, z], [s, c, z], [z, z, o]]
    return np.moveaxis(np.array(m), (0, 1), (-2, -1))


def bvh_forward_kinematics(text: str) -> tuple[dict[str, np.ndarray], float]:
    """Joint positions (F, 3) in the file's units per joint name, and the frame time.

    Standard BVH semantics: rotation channels compose in the listed order (R = R1 R2 R3),
    position channels give the joint's local translation (replacing OFFSET), global
    position = parent position + parent global rotation @ local translation.
    """
    m = Bvh(text)
    data = np.array(m.frames, dtype=np.float64)
    col = 0
    pos, rot = {}, {}
    for name in m.get_joints_names():
        joint = m.get_joint(name)
        ch = m.joint_channels(name)
        vals = data[:, col : col + len(ch)]
        col += len(ch)
        t = np.broadcast_to(np.array(m.joint_offset(name)), (len(data), 3))
        if "Xposition" in ch:
            t = np.stack([vals[:, ch.index(f"{a}position")] for a in "XYZ"], axis=1)
        r = np.broadcast_to(np.eye(3), (len(data), 3, 3))
        for k, c in enumerate(ch):
            if c.endswith("rotation"):
                r = r @ _elementary(c[0], vals[:, k])
        parent = joint.parent
        if parent.value and parent.value[0] in ("ROOT", "JOINT"):
            pn = parent.value[1]
            pos[name] = pos[pn] + np.einsum("fij,fj->fi", rot[pn], t)
            rot[name] = rot[pn] @ r
        else:
            pos[name], rot[name] = t.copy(), r
    assert col == data.shape[1], "channel count does not match the motion columns"
    return pos, float(m.search("Frame", "Time:")[0].value[2])


def fk_positions_m(text: str) -> np.ndarray:
    """(F, 17, 3) metres in our z-up frame, from a BVH written in centimetres."""
    pos, _ = bvh_forward_kinematics(text)
    p = np.stack([pos[n] for n in H36M_NAMES], axis=1) / 100.0
    return p @ BVH_TO_OURS.T


def random_skeleton_motion(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Valid random motion (F, 17, 3): fixed bone lengths, random directions per frame."""
    lengths = rng.uniform(0.05, 0.5, NUM_JOINTS)
    p = np.zeros((frames, NUM_JOINTS, 3))
    p[:, 0] = rng.normal(0, 1.0, (frames, 3)) + np.array([0, 0, 1.0])
    for j in range(1, NUM_JOINTS):
        d = rng.normal(size=(frames, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        p[:, j] = p[:, H36M_PARENTS[j]] + d * lengths[j]
    return p.astype(np.float32)


def _seq(joints: np.ndarray, ids=None, fps: float = 50.0) -> Pose3DSequence:
    j = np.asarray(joints, dtype=np.float32)
    if j.ndim == 3:
        j = j[:, None]
    return Pose3DSequence(j, np.arange(j.shape[1]) if ids is None else ids, fps, variant="xs",
                          checkpoint="ck.pt", meta={"note": "test"})  # fmt: skip


# --------------------------------------------------------------------------- npy / json / csv
@pytest.fixture()
def two_person_result() -> Pose3DSequence:
    rng = np.random.default_rng(1)
    j = rng.normal(0, 1, (6, 2, NUM_JOINTS, 3)).astype(np.float32)
    j[2, 0, 5] = np.nan  # one missing joint
    j[3, 1] = np.nan  # person absent from a frame
    j[4, 0, 7, 2] = np.inf  # a non-finite coordinate counts as missing
    return _seq(j, ids=np.array([4, 9]), fps=25.0)


def test_npy_roundtrip(tmp_path, two_person_result):
    export_all(two_person_result, tmp_path, ["npy"])
    back = np.load(tmp_path / "pose3d.npy")
    assert back.dtype == np.float32 and back.shape == (6, 2, 17, 3)
    np.testing.assert_array_equal(back, two_person_result.joints)


def test_json_roundtrip_and_nulls(tmp_path, two_person_result):
    export_all(two_person_result, tmp_path, ["json"])
    doc = json.loads((tmp_path / "pose3d.json").read_text())
    meta = doc["metadata"]
    assert meta["fps"] == 25.0 and meta["units"] == "m" and meta["variant"] == "xs"
    assert meta["joint_names"] == list(H36M_NAMES) and meta["track_ids"] == [4, 9]
    assert meta["frames"] == 6 and meta["persons"] == 2 and "z up" in meta["axes"]
    back = np.full((6, 2, 17, 3), np.nan)
    for fr in doc["frames"]:
        assert fr["time_s"] == pytest.approx(fr["frame"] / 25.0)
        for p, person in enumerate(fr["persons"]):
            assert person["track_id"] == [4, 9][p]
            for k, name in enumerate(H36M_NAMES):
                if person["joints"][name] is not None:
                    back[fr["frame"], p, k] = person["joints"][name]
    ref = two_person_result.joints.astype(np.float64)
    ok = np.isfinite(ref).all(-1)
    assert np.array_equal(np.isfinite(back).all(-1), ok)
    np.testing.assert_allclose(back[ok], ref[ok], atol=1e-6)
    assert doc["frames"][2]["persons"][0]["joints"]["l_knee"] is None
    assert doc["frames"][4]["persons"][0]["joints"]["spine"] is None


def test_csv_roundtrip_long_format(tmp_path, two_person_result):
    export_all(two_person_result, tmp_path, ["csv"])
    with open(tmp_path / "pose3d.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["frame", "time_s", "track_id", "joint", "x", "y", "z"]
    back = np.full((6, 2, 17, 3), np.nan)
    col = {4: 0, 9: 1}
    for r in rows:
        if r["x"] != "":
            f, p, k = int(r["frame"]), col[int(r["track_id"])], H36M_NAMES.index(r["joint"])
            back[f, p, k] = [float(r["x"]), float(r["y"]), float(r["z"])]
        assert float(r["time_s"]) == pytest.approx(int(r["frame"]) / 25.0)
    ref = two_person_result.joints.astype(np.float64)
    ok = np.isfinite(ref).all(-1)
    assert np.array_equal(np.isfinite(back).all(-1), ok)
    np.testing.assert_allclose(back[ok], ref[ok], atol=1e-6)
    # The absent person has no rows in frame 3; the missing joint has a row with empty x/y/z.
    assert not [r for r in rows if r["frame"] == "3" and r["track_id"] == "9"]
    knee = [r for r in rows if (r["frame"], r["track_id"], r["joint"]) == ("2", "4", "l_knee")]
    assert len(knee) == 1 and knee[0]["x"] == ""
    assert len(rows) == (6 * 2 - 1) * 17


def test_read_pose3d_uses_json_metadata(tmp_path, two_person_result):
    export_all(two_person_result, tmp_path, ["npy", "json"])
    back = read_pose3d(tmp_path)
    assert back.fps == 25.0 and back.variant == "xs" and back.checkpoint == "ck.pt"
    assert back.track_ids.tolist() == [4, 9]
    np.testing.assert_array_equal(back.joints, two_person_result.joints)


def test_export_all_rejects_unknown_format_and_leaves_no_temp(tmp_path, two_person_result):
    with pytest.raises(HGMambaError, match="unknown export format"):
        export_all(two_person_result, tmp_path, ["npy", "fbx"])
    paths = export_all(two_person_result, tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert sorted(p.name for p in paths) == names
    expected = ["pose3d.bvh", "pose3d.csv", "pose3d.html", "pose3d.json", "pose3d.npy"]
    assert names == [*expected, "pose3d_p9.bvh"]


# --------------------------------------------------------------------------- BVH
def test_euler_zxy_matches_definition():
    rng = np.random.default_rng(0)
    ang = rng.uniform(-180, 180, (500, 3))
    ang[:, 1] = rng.uniform(-89.9, 89.9, 500)
    ang[:5, 1] = [90.0, -90.0, 89.9999, -89.9999, 0.0]  # gimbal lock and its neighbourhood
    r = _elementary("Z", ang[:, 0]) @ _elementary("X", ang[:, 1]) @ _elementary("Y", ang[:, 2])
    e = euler_zxy_from_matrix(r)
    back = _elementary("Z", e[:, 0]) @ _elementary("X", e[:, 1]) @ _elementary("Y", e[:, 2])
    np.testing.assert_allclose(back, r, atol=1e-9)


@pytest.mark.parametrize("key", ["S1/Walking 1", "S9/Directions"])
def test_bvh_reproduces_h36m_motion(tmp_path, h36m_mini, key):
    joints = h36m_mini[key]  # metres, world frame, z up
    (path,) = write_bvh(_seq(joints), tmp_path / "pose3d.bvh")
    text = path.read_text()
    assert [n for n in Bvh(text).get_joints_names()] == list(H36M_NAMES)
    fk = fk_positions_m(text)
    err_mm = np.linalg.norm(fk - joints, axis=-1) * 1000
    assert err_mm.max() < 1.0, f"max FK error {err_mm.max():.3f} mm"
    # Y-up in the file: the head is higher than the ankles (in BVH Y) in every frame.
    pos, frame_time = bvh_forward_kinematics(text)
    assert (pos["head"][:, 1] > pos["r_ankle"][:, 1]).all()
    assert frame_time == pytest.approx(1 / 50.0)


def test_bvh_offsets_are_median_bone_lengths(tmp_path, h36m_mini):
    joints = h36m_mini["S1/Walking 1"].astype(np.float64)
    (path,) = write_bvh(_seq(joints), tmp_path / "a.bvh")
    m = Bvh(path.read_text())
    for j in range(1, NUM_JOINTS):
        bone = np.linalg.norm(joints[:, j] - joints[:, H36M_PARENTS[j]], axis=-1)
        off = np.linalg.norm(m.joint_offset(H36M_NAMES[j])) / 100.0
        assert off == pytest.approx(np.median(bone), abs=1e-5)


def test_bvh_reproduces_random_valid_skeletons(tmp_path):
    rng = np.random.default_rng(7)
    joints = random_skeleton_motion(rng, 200)
    # Exercise the antiparallel case: a forearm folded straight back onto the upper arm.
    joints[0, 13] = joints[0, 12] + (joints[0, 11] - joints[0, 12]) / np.linalg.norm(
        joints[0, 11] - joints[0, 12]
    ) * np.linalg.norm(joints[1, 13] - joints[1, 12])
    (path,) = write_bvh(_seq(joints), tmp_path / "r.bvh")
    err_mm = np.linalg.norm(fk_positions_m(path.read_text()) - joints, axis=-1) * 1000
    assert err_mm.max() < 1.0, f"max FK error {err_mm.max():.3f} mm"


def test_bvh_varying_bone_lengths_use_median(tmp_path, h36m_mini):
    """A prediction's limb lengths jitter; the BVH keeps median lengths, so FK is off by about
    the jitter, not more (errors do not blow up along the chain)."""
    rng = np.random.default_rng(3)
    joints = h36m_mini["S9/Directions"].astype(np.float64).copy()
    noisy = joints + rng.normal(0, 0.005, joints.shape)  # 5 mm noise per coordinate
    (path,) = write_bvh(_seq(noisy), tmp_path / "n.bvh")
    err_mm = np.linalg.norm(fk_positions_m(path.read_text()) - noisy, axis=-1) * 1000
    assert np.median(err_mm) < 8.0 and err_mm.max() < 50.0


def test_bvh_nan_frames_filled_from_nearest_and_multi_person(tmp_path, h36m_mini):
    a = h36m_mini["S1/Walking 1"][:40].astype(np.float32).copy()
    b = h36m_mini["S9/Directions"][:40].astype(np.float32).copy()
    a[10:13] = np.nan  # three frames missing: 10, 11 -> frame 9, 12 -> frame 13
    a[20, 4] = np.nan  # one joint missing: the whole frame is taken from a neighbour
    gone = np.full_like(a, np.nan)
    res = _seq(np.stack([a, b, gone], axis=1), ids=np.array([2, 5, 8]))
    paths = write_bvh(res, tmp_path / "pose3d.bvh")
    assert [p.name for p in paths] == ["pose3d.bvh", "pose3d_p5.bvh"]  # no file for id 8
    fk = fk_positions_m(paths[0].read_text())
    assert fk.shape[0] == 40
    for f, src in [(10, 9), (11, 9), (12, 13), (20, 19), (0, 0)]:
        np.testing.assert_allclose(fk[f], a[src], atol=1e-3)
    np.testing.assert_allclose(fk_positions_m(paths[1].read_text()), b, atol=1e-3)


def test_fill_nearest_valid():
    x = np.arange(5, dtype=np.float64)[:, None, None] * np.ones((5, NUM_JOINTS, 3))
    x[[0, 2, 3]] = np.nan
    out = fill_nearest_valid(x)
    assert out[:, 0, 0].tolist() == [1, 1, 1, 4, 4]
    assert fill_nearest_valid(np.full((3, NUM_JOINTS, 3), np.nan)) is None


def test_bvh_needs_positive_fps(tmp_path, h36m_mini):
    with pytest.raises(HGMambaError, match="fps"):
        write_bvh(_seq(h36m_mini["S1/Walking 1"][:5], fps=0.0), tmp_path / "x.bvh")
    assert list(tmp_path.iterdir()) == []
