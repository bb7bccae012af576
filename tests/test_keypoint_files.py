"""Reading precomputed 2D: our npz, VideoPose3D custom npz, COCO/H36M arrays (npz, npy, json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detectors.front_end import load_keypoints
from detectors.keypoint_files import detect_layout, read_keypoint_file
from hgmamba_core.errors import HGMambaError
from hgmamba_core.poses import Pose2DSequence
from hgmamba_core.skeleton import coco_to_h36m

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "assets" / "demo" / "vtest_10s.mp4"


def _coco_pose(cx: float = 100.0, top: float = 20.0, scale: float = 1.0) -> np.ndarray:
    """An upright COCO-17 pose in pixels (y down)."""
    p = np.array(
        [(0, 0), (4, -4), (-4, -4), (8, -2), (-8, -2), (15, 20), (-15, 20), (20, 40), (-20, 40),
         (22, 60), (-22, 60), (10, 70), (-10, 70), (10, 100), (-10, 100), (10, 130), (-10, 130)],
        np.float32,
    )  # fmt: skip
    return p * scale + np.array([cx, top + 4 * scale], np.float32)


def _coco_clip(frames: int = 12, persons: int = 1) -> np.ndarray:
    """(F, P, 17, 3) x, y, conf: person p is (p+1)x larger, drifting right."""
    out = np.zeros((frames, persons, 17, 3), np.float32)
    for f in range(frames):
        for p in range(persons):
            out[f, p, :, :2] = _coco_pose(100 + 2 * f + 150 * p, scale=1.0 + p)
            out[f, p, :, 2] = 0.9
    return out


def test_detect_layout_on_hand_made_poses():
    coco = _coco_clip(3)[:, 0, :, :2]
    h36m, _ = coco_to_h36m(coco)
    assert detect_layout(coco) == "coco"
    assert detect_layout(h36m) == "h36m"
    assert detect_layout(np.full((2, 17, 2), np.nan)) is None


def test_own_pose2d_npz_round_trip(tmp_path):
    kp = np.random.default_rng(0).uniform(0, 300, (5, 2, 17, 2)).astype(np.float32)
    sc = np.full((5, 2, 17), 0.7, np.float32)
    kp[2, 1] = np.nan
    sc[2, 1] = np.nan
    seq = Pose2DSequence(kp, sc, np.array([3, 8]), 25.0, (320, 240), source="v.mp4")
    seq.save(tmp_path / "pose2d.npz")
    raw = read_keypoint_file(tmp_path / "pose2d.npz")
    assert raw.cleaned and raw.layout == "h36m" and raw.size == (320, 240) and raw.fps == 25.0
    np.testing.assert_array_equal(raw.track_ids, [3, 8])
    res = load_keypoints(tmp_path / "pose2d.npz", person="all", min_track_frames=1)
    assert res.poses.size == (320, 240) and res.poses.fps == 25.0
    np.testing.assert_allclose(res.poses.keypoints[:, 0], kp[:, 0], atol=1e-5)
    assert np.isfinite(res.poses.keypoints[2, 1]).all()  # 1-frame hole bridged
    assert res.notes == []


def test_videopose3d_custom_npz(tmp_path):
    clip = _coco_clip(10)[:, 0, :, :2]
    positions = {"walk.mp4": {"custom": [clip]}}
    metadata = {
        "layout_name": "coco",
        "num_joints": 17,
        "keypoints_symmetry": [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]],
        "video_metadata": {"walk.mp4": {"w": 640, "h": 360}},
    }
    path = tmp_path / "data_2d_custom_myvideos.npz"
    np.savez_compressed(path, positions_2d=positions, metadata=metadata)
    raw = read_keypoint_file(path)
    assert raw.layout == "coco" and raw.size == (640, 360) and raw.fps is None
    res = load_keypoints(path)
    assert res.poses.size == (640, 360)
    assert any("frame rate" in n for n in res.notes)
    expect, _ = coco_to_h36m(clip)
    np.testing.assert_allclose(res.poses.keypoints[:, 0], expect, atol=1e-4)
    # several videos in one file: pick by entry, or by the lifted video's file name
    positions["vtest_10s.mp4"] = {"custom": [clip[:4] + 50]}
    np.savez_compressed(path, positions_2d=positions, metadata=metadata)
    with pytest.raises(HGMambaError, match="holds 2 videos"):
        read_keypoint_file(path)
    assert read_keypoint_file(path, entry="walk.mp4").keypoints.shape[0] == 10
    assert load_keypoints(path, video=DEMO).poses.num_frames == 4


class _Evil:
    """Unpickling this creates a file: proof that a loader ran arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_videopose3d_npz_never_unpickles_arbitrary_objects(tmp_path):
    marker = tmp_path / "owned"
    path = tmp_path / "evil.npz"
    np.savez(path, positions_2d=np.array({"v": {"custom": [_Evil(marker)]}}, dtype=object))
    with pytest.raises(HGMambaError, match="refusing"):
        read_keypoint_file(path)
    assert not marker.exists()
    # an object array outside the VideoPose3D layout is refused outright
    path2 = tmp_path / "other.npz"
    np.savez(path2, stuff=np.array([{"a": 1}], dtype=object))
    with pytest.raises(HGMambaError, match="refusing"):
        read_keypoint_file(path2)


def test_coco_array_npz_multi_person_selection_and_missing(tmp_path):
    clip = _coco_clip(12, persons=2)
    clip[4:6, 1, :, 2] = 0.0  # person 1 missing for two frames (conf 0 = missing)
    path = tmp_path / "kp.npz"
    np.savez(path, keypoints=clip, fps=np.float64(24.0), size=np.array([800, 600]))
    raw = read_keypoint_file(path)
    assert raw.layout == "coco" and raw.fps == 24.0 and raw.size == (800, 600)
    assert np.isnan(raw.keypoints[4, 1]).all()
    main = load_keypoints(path)  # person 1 is twice as large: the main subject
    np.testing.assert_array_equal(main.poses.track_ids, [1])
    assert np.isfinite(main.poses.keypoints).all()  # the 2-frame hole is interpolated
    both = load_keypoints(path, person="all", min_track_frames=5)
    assert both.poses.num_persons == 2 and list(both.poses.track_ids) == [1, 0]
    one = load_keypoints(path, person=0)
    np.testing.assert_array_equal(one.poses.track_ids, [0])
    with pytest.raises(HGMambaError, match="no such track"):
        load_keypoints(path, person=7)


def test_h36m_json_and_explicit_layout(tmp_path):
    coco = _coco_clip(8)[:, 0]
    h36m, _ = coco_to_h36m(coco[..., :2])
    path = tmp_path / "kp.json"
    path.write_text(json.dumps({"keypoints": h36m.tolist(), "width": 400, "height": 300}))
    res = load_keypoints(path)
    assert res.poses.size == (400, 300)
    np.testing.assert_allclose(res.poses.keypoints[:, 0], h36m, atol=1e-4)
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(coco.tolist()))
    assert read_keypoint_file(bare).layout == "coco"
    assert read_keypoint_file(bare, layout="h36m").layout == "h36m"  # the user's word wins


def test_size_and_fps_from_video_then_defaults(tmp_path):
    path = tmp_path / "kp.npy"
    np.save(path, _coco_clip(6)[:, 0])
    res = load_keypoints(path, video=DEMO)
    assert res.poses.size == (768, 576) and res.poses.fps == 10.0
    assert any("frames" in n for n in res.notes)  # 6 keypoint frames vs 100 video frames
    guessed = load_keypoints(path)
    assert guessed.poses.fps == 30.0 and len(guessed.notes) == 2
    assert load_keypoints(path, size=(1000, 500), fps=50).poses.size == (1000, 500)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (np.full((4, 17, 2), np.nan, np.float32), "NaN"),
        (np.ones((4, 18, 2), np.float32), "17"),
        (np.ones((4, 17), np.float32), "17"),
        (np.ones((0, 17, 2), np.float32), "no frames"),
    ],
)
def test_bad_arrays_give_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.npy"
    np.save(path, content)
    with pytest.raises(HGMambaError, match=message) as e:
        read_keypoint_file(path, layout="coco")
    assert "\n" not in str(e.value)


def test_bad_files(tmp_path):
    with pytest.raises(HGMambaError, match="not found"):
        read_keypoint_file(tmp_path / "missing.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(HGMambaError, match="empty"):
        read_keypoint_file(tmp_path / "empty.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(HGMambaError, match="not a valid npz"):
        read_keypoint_file(tmp_path / "text.npz")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(HGMambaError, match="not valid JSON"):
        read_keypoint_file(tmp_path / "bad.json")
    (tmp_path / "k.txt").write_text("1 2 3")
    with pytest.raises(HGMambaError, match=r"\.npz, \.npy or \.json"):
        read_keypoint_file(tmp_path / "k.txt")
    lying = np.stack(np.broadcast_arrays(10.0 * np.arange(17), 50.0), -1)  # flat: no up/down
    np.save(tmp_path / "lying.npy", np.repeat(lying[None], 3, 0))
    with pytest.raises(HGMambaError, match="--layout"):
        read_keypoint_file(tmp_path / "lying.npy")
    path = tmp_path / "two.npz"
    np.savez(path, a=np.ones((2, 17, 2)), b=np.ones((2, 17, 2)))
    with pytest.raises(HGMambaError, match="name it 'keypoints'"):
        read_keypoint_file(path)
