"""The detector's input size chosen from the people's height (detectors/probe.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from detectors.probe import (
    choose_imgsz,
    merge_boxes,
    probe_frames,
    probe_imgsz,
    tiled_boxes,
    tiles,
)
from detectors.yolo import YoloPoseDetector
from hgmamba_core.pipeline import LiftOptions, StageTime, _choose_detector_size

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo" / "vtest_10s.mp4"


@pytest.mark.parametrize("size", [(768, 576), (1280, 720), (720, 1280), (640, 640)])
def test_tiles_cover_the_frame_with_its_aspect(size):
    w, h = size
    covered = np.zeros((h, w), dtype=bool)
    for x0, y0, x1, y1 in tiles(w, h):
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert (x1 - x0) / (y1 - y0) == pytest.approx(w / h, rel=0.02)
        assert (x1 - x0) < w  # a tile is seen larger than the whole frame
        covered[y0:y1, x0:x1] = True
    assert covered.all()


def test_choose_imgsz_from_heights():
    small = [np.array([80.0, 84.0, 90.0]), np.array([78.0, 86.0])]
    assert choose_imgsz(small, 768, main_only=False) == (1280, 84.0)
    # 120 px people in 768 px frames: 100 px at 640, 150 at 960
    assert choose_imgsz([np.array([120.0])], 768, main_only=True)[0] == 960
    # one tall person among small ones: a single-person run follows the tall one
    mixed = [np.array([300.0, 80.0, 82.0]), np.array([310.0, 85.0])]
    assert choose_imgsz(mixed, 768, main_only=True)[0] == 640
    assert choose_imgsz(mixed, 768, main_only=False)[0] == 1280
    assert choose_imgsz([np.zeros(0), np.zeros(0)], 1280, main_only=True) == (640, 0.0)
    assert choose_imgsz([np.array([20.0])], 1920, main_only=True)[0] == 1280  # capped


def test_nms_merges_one_person_seen_by_two_tiles():
    boxes = np.array(
        [[100, 100, 140, 200], [101, 101, 139, 199], [100, 100, 140, 150], [300, 100, 340, 200]],
        dtype=np.float32,
    )  # a person, the same from another tile, its upper half cut by a tile edge, another one
    assert sorted(merge_boxes(boxes).tolist()) == [0, 3]


def test_probe_frames_reads_only_what_it_needs():
    read = []

    def frames():
        for i in range(1000):
            read.append(i)
            yield np.full((2, 2, 3), i, dtype=np.uint8)

    got = probe_frames(frames(), fps=25.0, seconds=(0.5, 3.0))
    assert [int(f[0, 0, 0]) for f in got] == [12, 75] and read[-1] == 75
    short = probe_frames(iter([np.zeros((2, 2, 3), np.uint8)] * 5), fps=25.0)
    assert len(short) == 1  # a clip shorter than the first probe time: its last frame


@pytest.fixture(scope="module")
def detector_640():
    return YoloPoseDetector(imgsz=640, device="cpu", backend="torch", frame_size=(768, 576))


def test_probe_raises_the_size_for_the_demo_crowd(detector_640):
    """The demo's ~80 px people: 640 finds few of them, so the look asks for 1280."""
    probe = probe_imgsz(DEMO, detector_640, main_only=False)
    assert probe.imgsz == 1280 and 60 < probe.height_px < 110 and probe.people >= 6
    assert "1280" in probe.note(640)


def test_probe_keeps_640_for_one_tall_person(tmp_path, detector_640):
    """A phone-like frame (one person ~2/3 of its height): one detection decides, 640 stays."""
    frame = next(iter(_frames(DEMO)))
    boxes = tiled_boxes(detector_640, frame)  # the whole frame at 640 finds few of them
    x0, y0, x1, y1 = boxes[int(np.argmax(boxes[:, 3] - boxes[:, 1]))]
    cx, cy, bh = (x0 + x1) / 2, (y0 + y1) / 2, (y1 - y0) * 1.5
    crop = frame[
        int(max(0, cy - bh / 2)) : int(cy + bh / 2),
        int(max(0, cx - bh * 2 / 3)) : int(cx + bh * 2 / 3),
    ]
    big = cv2.resize(crop, (768, 576), interpolation=cv2.INTER_CUBIC)
    path = tmp_path / "tall.png"
    cv2.imwrite(str(path), big)
    probe = probe_imgsz(path, detector_640, main_only=True)
    assert probe.imgsz == 640 and probe.frames == 1 and probe.height_px > 250
    assert probe.note(640) is None


def _frames(path):
    from hgmamba_core.video import iter_frames

    return iter_frames(path)


def test_explicit_size_skips_the_probe():
    stages: dict[str, StageTime] = {}
    notes: list[str] = []
    opts = LiftOptions(video=DEMO, detector_imgsz=480)
    assert _choose_detector_size(opts, DEMO, stages, notes) == (480, None)
    assert stages == {} and notes == []
