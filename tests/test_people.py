"""Everyone in a crowd: fragments of one person joined, short tracks kept, low boxes tracked."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from detectors.base import FrameDetections
from detectors.front_end import finish_tracks
from detectors.tracking import (
    TrackEnd,
    TrackStore,
    default_min_track_frames,
    default_stitch_gap,
    select_tracks,
    stitch_cost,
)
from detectors.yolo import TRACK_LOW_CONF, YoloPoseDetector


def _person(x: float, y: float, h: float = 80.0) -> tuple[np.ndarray, np.ndarray]:
    """A box (4,) and COCO-17 keypoints (17, 2) of an upright person centred at (x, y)."""
    box = np.array([x - h / 4, y - h / 2, x + h / 4, y + h / 2], dtype=np.float32)
    ys = np.linspace(y - h / 2, y + h / 2, 17)
    kp = np.stack([np.full(17, x), ys], axis=1).astype(np.float32)
    return box, kp


def _frame(people: list[tuple[int, float, float]]) -> FrameDetections:
    """One frame's detections: (track id, x, y) per person."""
    boxes, kps = zip(*(_person(x, y) for _, x, y in people), strict=True)
    n = len(people)
    return FrameDetections(
        keypoints=np.stack(kps), scores=np.full((n, 17), 0.9), boxes=np.stack(boxes),
        box_scores=np.full(n, 0.8), track_ids=np.array([t for t, _, _ in people]),
    )  # fmt: skip


def _walk_clip() -> TrackStore:
    """A walks right 5 px/frame, lost on frames 10-12 and back as id 4; B stands still at
    x=600 throughout; C appears on frame 13 far from where A would be (id 5)."""
    store = TrackStore()
    for f in range(21):
        people = [(2, 600.0, 300.0)]
        if f < 10:
            people.append((1, 100.0 + 5 * f, 300.0))
        elif f >= 13:
            people += [(4, 100.0 + 5 * f, 300.0), (5, 300.0, 100.0)]
        store.add(f, _frame(people))
    return store


def test_two_fragments_of_one_person_are_joined():
    store = _walk_clip()
    joined = store.stitch_fragments(default_stitch_gap(10.0), 10.0)
    assert joined == [(1, 4)]
    stats = store.stats()
    counts = dict(zip(stats.track_ids.tolist(), stats.frame_counts.tolist(), strict=True))
    assert counts == {1: 18, 2: 21, 5: 8}
    kp, _ = store.dense([1])
    assert np.isnan(kp[10:13, 0]).all() and np.isfinite(kp[13:, 0]).all()
    np.testing.assert_allclose(kp[13:, 0, 0, 0], 100.0 + 5 * np.arange(13, 21))


def test_stitching_refuses_what_cannot_be_one_person():
    end = TrackEnd(10, np.array([100.0, 300.0]), 80.0, np.array([5.0, 0.0]))

    def start(frame: int, x: float, h: float = 80.0) -> TrackEnd:
        return TrackEnd(frame, np.array([x, 300.0]), h, np.zeros(2))

    assert stitch_cost(end, start(13, 115.0), 10, 10.0) is not None  # on its predicted path
    assert stitch_cost(end, start(13, 220.0), 10, 10.0) is None  # too far from it
    assert stitch_cost(end, start(13, 115.0, h=160.0), 10, 10.0) is None  # twice the size
    assert stitch_cost(end, start(25, 175.0), 10, 10.0) is None  # gap over 1 s
    assert stitch_cost(end, start(10, 100.0), 10, 10.0) is None  # overlaps in time


def test_a_short_track_is_kept_and_cleaned_for_lifting():
    """A person seen 6 frames (0.6 s at 10 fps) is kept by --person all and gives one full
    segment (the lifter pads segments shorter than its window: test_lift)."""
    store = TrackStore()
    for f in range(30):
        people = [(1, 200.0 + f, 300.0)] + ([(2, 500.0, 250.0)] if 10 <= f < 16 else [])
        store.add(f, _frame(people))
    chosen = select_tracks(store.stats(), "all", default_min_track_frames(10.0))
    assert chosen == [1, 2]
    kp, sc = store.dense(chosen)
    poses, segments, _ = finish_tracks(
        kp, sc, np.array(chosen), layout="coco", fps=10.0, size=(768, 576), source="synthetic"
    )
    short = [s for s in segments if s.track_id == 2]
    assert [(s.start, s.stop) for s in short] == [(10, 16)]
    assert np.isfinite(poses.keypoints[10:16, 1]).all()
    assert select_tracks(store.stats(), "all", 10) == [1]  # the old 1 s rule dropped it


def test_tracker_is_handed_boxes_below_the_start_threshold():
    det = YoloPoseDetector(imgsz=320, device="cpu", conf=0.3)
    cfg = dict(line.split(": ") for line in Path(det.tracker).read_text().splitlines())
    assert float(cfg["track_high_thresh"]) == 0.3 and float(cfg["new_track_thresh"]) == 0.3
    assert float(cfg["track_low_thresh"]) == TRACK_LOW_CONF == det.track_low_conf
    assert det._kwargs(det.track_low_conf)["conf"] == TRACK_LOW_CONF < det._kwargs()["conf"]
    low = YoloPoseDetector(imgsz=320, device="cpu", conf=0.05)
    assert low.track_low_conf == 0.05  # never above --conf
    own = YoloPoseDetector(imgsz=320, device="cpu", tracker="botsort.yaml")
    assert own.tracker == "botsort.yaml"
