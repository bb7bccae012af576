"""Tracking by crop (detectors/roi.py): exact crop geometry, and on real frames the same people
and keypoints as full-frame detection, new people found at the next full pass."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from detectors import Pose2DDetector
from detectors.compare import keypoint_agreement
from detectors.roi import (
    CropWindow,
    best_in_crop,
    build_roi_tracker,
    check_detector_mode,
    full_every_frames,
    window_around,
)
from detectors.yolo import YoloPoseDetector
from hgmamba_core.errors import HGMambaError

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo" / "vtest_10s.mp4"


def test_crop_to_frame_mapping_is_exact():
    """A ramp image (value = the pixel's centre x, y) cut with scale and shift, also past the
    frame's edge: each crop pixel holds exactly the frame point to_frame() names."""
    h, w = 90, 160
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    frame = np.stack([xs + 0.5, ys + 0.5, np.zeros_like(xs)], -1)  # edge-based centres
    win = CropWindow(x0=37.25, y0=11.5, side=48.0, size=64)  # 4/3 upscale
    crop = win.cut(frame)
    u, v = np.meshgrid(np.arange(64) + 0.5, np.arange(64) + 0.5)
    where = win.to_frame(np.stack([u, v], -1))
    np.testing.assert_allclose(crop[..., 0], where[..., 0], atol=1e-3)
    np.testing.assert_allclose(crop[..., 1], where[..., 1], atol=1e-3)
    np.testing.assert_allclose(win.to_crop(win.to_frame(where)), where, atol=1e-4)
    box = np.array([40.0, 12.0, 80.0, 50.0], np.float32)
    np.testing.assert_allclose(win.box_to_frame(win.box_to_crop(box)), box, atol=1e-4)
    edge = CropWindow(x0=-10.0, y0=-10.0, side=20.0, size=32).cut(frame.astype(np.uint8))
    assert (edge[:8, :8] == 114).all()  # outside the frame: Ultralytics' padding grey


def test_window_follows_the_velocity_and_is_square():
    win = window_around(np.array([100, 50, 140, 150]), np.array([6.0, -2.0]), 192, scale=1.5)
    assert win.side == pytest.approx(150.0)
    assert win.x0 + win.side / 2 == pytest.approx(126.0)
    assert win.y0 + win.side / 2 == pytest.approx(98.0)


def test_best_in_crop_takes_the_followed_person_not_a_passer_by():
    raw = np.zeros((56, 3), np.float32)
    raw[:5, 0] = [50, 50, 40, 80, 0.6]  # the followed person, expected here
    raw[:5, 1] = [150, 50, 40, 80, 0.9]  # surer, but elsewhere
    raw[:5, 2] = [52, 50, 40, 80, 0.05]  # below the score floor
    raw[5:, 0] = np.tile([50.0, 40.0, 0.8], 17)
    got = best_in_crop(raw, np.array([30, 10, 70, 90]), 0.1)
    assert got is not None and got.box_score == pytest.approx(0.6)
    np.testing.assert_allclose(got.box, [30, 10, 70, 90])
    assert got.keypoints.shape == (17, 2) and (got.scores == np.float32(0.8)).all()
    assert best_in_crop(raw, np.array([300, 300, 340, 380]), 0.1) is None


def test_option_is_validated():
    assert check_detector_mode(" Track ") == "track"
    with pytest.raises(HGMambaError, match="--detector-mode must be one of full, track"):
        check_detector_mode("roi")
    assert full_every_frames(10.0) == 10 and full_every_frames(None) == 30


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """8 demo frames, a 384x288 window around two walkers scaled 2x (people ~150-180 px)."""
    cap = cv2.VideoCapture(str(DEMO))
    out = [cap.read()[1][144:432, 192:576] for _ in range(8)]
    cap.release()
    return [cv2.resize(f, (768, 576), interpolation=cv2.INTER_CUBIC) for f in out]


def _tracker(full_every_s: float, fps: float = 10.0):
    frame_det = YoloPoseDetector(imgsz=640, device="cpu", backend="torch", frame_size=(768, 576))
    return build_roi_tracker(
        frame_det, None, fps=fps, frame_size=(768, 576), crop_size=256, full_every_s=full_every_s
    )


def test_tracking_by_crop_finds_the_same_people_as_full_frames(frames):
    """Crops keep every person (>= 120 px tall) the full-frame pass finds, with the same ids
    all along, and keypoints within a few pixels of its own."""
    roi = _tracker(full_every_s=10.0)  # one full pass, then crops only
    assert isinstance(roi, Pose2DDetector)
    ref_det = roi.frame_detector
    ref, got, ids = [], [], []
    for f in frames:
        d = roi.track(f)
        r = ref_det.detect(f)
        big = lambda x: (x.boxes[:, 3] - x.boxes[:, 1]) >= 120  # noqa: E731
        keep = big(r)
        ref.append(
            type(r)(
                r.keypoints[keep],
                r.scores[keep],
                r.boxes[keep],
                r.box_scores[keep],
                r.track_ids[keep],
            )
        )
        got.append(d)
        ids.append(set(d.track_ids[big(d)].tolist()))
    assert roi.stats.crops > 0
    assert all(i <= ids[0] for i in ids[1:])  # the same big people followed, ids kept
    mean, share, joints = keypoint_agreement(ref, got)
    assert share == 1.0 and joints > 100
    assert mean < 4.0


def test_a_person_entering_is_found_at_the_next_full_pass(frames):
    """The left half is blank for the first 3 frames: its people appear at frame 3 but are
    picked up only by the full pass at frame 4 (every 4 frames), unless a lost crop forced an
    earlier full pass."""
    clip = [f.copy() for f in frames]
    for f in clip[:3]:
        f[:, :384] = 114
    roi = _tracker(full_every_s=0.4)
    first_left: int | None = None
    full_frames = []
    for i, f in enumerate(clip):
        d = roi.track(f)
        if roi.last_was_full:
            full_frames.append(i)
        centres = (d.boxes[:, 0] + d.boxes[:, 2]) / 2
        if first_left is None and (centres < 340).any():
            first_left = i
    assert full_frames[0] == 0 and 4 in full_frames
    assert first_left is not None
    assert first_left == min(i for i in full_frames if i >= 3)


def test_follow_main_crops_one_person_and_sees_the_others_on_whole_frames(frames):
    frame_det = YoloPoseDetector(imgsz=640, device="cpu", backend="torch", frame_size=(768, 576))
    roi = build_roi_tracker(
        frame_det, None, fps=10.0, frame_size=(768, 576), crop_size=256, full_every_s=0.4,
        follow="main",
    )  # fmt: skip
    counts = {True: set(), False: set()}
    main_ids = set()
    for f in frames:
        d = roi.track(f)
        counts[roi.last_was_full].add(len(d))
        if not roi.last_was_full:
            main_ids |= set(d.track_ids.tolist())
    assert counts[True] == {2} and counts[False] == {1}
    assert len(main_ids) == 1  # the same person followed between the whole frames
