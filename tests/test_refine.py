"""Top-down crop refinement on the demo clip's small people (real detector, no mocks)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from detectors import Pose2DDetector
from detectors.refine import CropRefiner, crop_window
from detectors.yolo import YoloPoseDetector

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo" / "vtest_10s.mp4"


def test_crop_window_grows_the_box_and_stays_in_the_frame():
    assert crop_window(np.array([100, 100, 140, 180]), (768, 576)) == (90, 80, 150, 200)
    assert crop_window(np.array([-5, 0, 20, 40]), (768, 576)) == (0, 0, 27, 50)
    assert crop_window(np.array([750, 500, 768, 576]), (768, 576)) == (745, 481, 768, 576)


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(DEMO))
    out = [cap.read()[1] for _ in range(3)]
    cap.release()
    return out


def test_refiner_keeps_boxes_and_ids_and_moves_keypoints_little(frames):
    """Same people and track ids as the frame pass; keypoints re-estimated near the old ones."""
    frame_det = YoloPoseDetector(imgsz=640, device="cpu", backend="torch")
    refiner = CropRefiner(frame_det, YoloPoseDetector(imgsz=256, device="cpu", backend="torch"))
    assert isinstance(refiner, Pose2DDetector)
    refiner.reset()
    for f in frames:
        base = frame_det.detect(f)
        got = refiner.refine(f, base)
        assert len(got) == len(base)
        np.testing.assert_array_equal(got.boxes, base.boxes)
        np.testing.assert_array_equal(got.track_ids, base.track_ids)
        if len(base):
            assert not np.array_equal(got.keypoints, base.keypoints)  # crops were used
            h = base.boxes[:, 3] - base.boxes[:, 1]
            both = (got.scores > 0.5) & (base.scores > 0.5)
            d = np.linalg.norm(got.keypoints - base.keypoints, axis=-1)
            assert np.median(d[both] / np.repeat(h, 17).reshape(d.shape)[both]) < 0.1
    tracked = refiner.track(frames[0])
    assert (tracked.track_ids >= 0).all()


def test_keypoint_agreement_pairs_people_by_box():
    from detectors.base import FrameDetections
    from detectors.compare import keypoint_agreement

    kp = np.random.default_rng(0).uniform(0, 100, (2, 17, 2))
    boxes = np.array([[0, 0, 50, 100], [200, 0, 250, 100]])
    a = FrameDetections(kp, np.ones((2, 17)), boxes, np.ones(2), [-1, -1])
    b = FrameDetections(kp[::-1] + 3.0, np.ones((2, 17)), boxes[::-1], np.ones(2), [-1, -1])
    mean, share, joints = keypoint_agreement([a, a], [b, FrameDetections.empty()])
    assert mean == pytest.approx(np.hypot(3, 3)) and share == 0.5 and joints == 34
