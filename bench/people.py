"""Who of the demo clip's people is detected, tracked, kept and lifted, before and after.

    python bench/people.py [--configs before 960 1280] [--backend torch|auto]

Per configuration (one run, the configurations one after another on the same frames):
the detector + ByteTrack over the clip, person="all", the shipped lifter and world stage; per
reference frame the people in view (REFERENCE: counted by eye on frames 5 / 35 / 65 / 95 of
the demo clip, with their image positions), the raw detector boxes at or above 0.25 and 0.1
(as the tracker is handed them), the tracked boxes, the people kept (frames inside a cleaned
segment of a chosen track), the people lifted (finite pose3d), and how many of the reference
people a lifted person stands on (their 2D box contains the reference position, one each).
Then the means over all frames and the detector's seconds per frame as a ratio to the first
configuration's. Configurations: `before` (960, the detector handing the tracker only boxes
>= --conf, 1 s shortest track, no fragment joining: the pipeline before 2026-12-02), `960`
and `1280` (the current pipeline at that imgsz), `960-nostitch` (no fragment joining).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "assets" / "demo" / "vtest_10s.mp4"  # REFERENCE is this clip's
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from detectors.base import FrameDetections  # noqa: E402
from detectors.front_end import detect_video  # noqa: E402
from detectors.yolo import YoloPoseDetector  # noqa: E402
from hgmamba_core.pipeline import LiftOptions, lift_in_world, load_lifter  # noqa: E402
from hgmamba_core.video import VideoReader  # noqa: E402
from hgmamba_core.world import WorldConfig  # noqa: E402

# (x, y) pixel positions (about the hips) of the people in view, counted by eye; "post":
# half hidden behind the sign post, "far": ~35 px tall on the far path.
REFERENCE: dict[int, list[tuple[int, int, str]]] = {
    5: [(301, 257, ""), (501, 200, ""), (618, 283, "")],
    35: [(387, 218, ""), (402, 223, ""), (421, 241, "post"), (622, 292, ""), (652, 288, "")],
    65: [(340, 202, ""), (384, 219, ""), (416, 223, ""), (470, 239, ""), (505, 235, ""),
         (618, 273, "")],
    95: [(243, 75, "far"), (328, 229, ""), (394, 218, ""), (424, 243, "post"), (489, 190, ""),
         (514, 193, ""), (592, 207, "")],
}  # fmt: skip


@dataclass(frozen=True)
class Config:
    name: str
    imgsz: int
    low_boxes: bool  # hand the tracker boxes below --conf (ByteTrack's second association)
    min_track_frames: int | None  # None: the pipeline's default
    stitch: bool


CONFIGS = {
    "before": Config("before", 960, False, 10, False),
    "960": Config("960", 960, True, None, True),
    "960-nostitch": Config("960-nostitch", 960, True, None, False),
    "1280": Config("1280", 1280, True, None, True),
}


class _HighOnly(YoloPoseDetector):
    """The detector as before: only boxes >= conf reach the tracker."""

    @property
    def track_low_conf(self) -> float:
        return self.conf


class _Counting:
    """Wraps a detector: records per frame the raw box scores and the tracked boxes."""

    def __init__(self, det: YoloPoseDetector) -> None:
        self.det = det
        self.name = det.name
        self.notes = det.notes
        self.raw: list[np.ndarray] = []
        self.tracked: list[FrameDetections] = []
        det.model.add_callback("on_predict_postprocess_end", self._record)  # before the tracker

    def _record(self, predictor) -> None:  # type: ignore[no-untyped-def]
        self.raw.append(predictor.results[0].boxes.conf.cpu().numpy().copy())

    def detect(self, frame: np.ndarray) -> FrameDetections:
        return self.det.detect(frame)

    def track(self, frame: np.ndarray) -> FrameDetections:
        d = self.det.track(frame)
        self.tracked.append(d)
        return d

    def reset(self) -> None:
        self.det.reset()


def _boxes(kp: np.ndarray) -> np.ndarray:
    """(P, 4) boxes of (P, 17, 2) keypoints, padded by 15 % of their height; NaN if absent."""
    lo, hi = np.nanmin(kp, axis=1), np.nanmax(kp, axis=1)
    pad = 0.15 * (hi[:, 1:2] - lo[:, 1:2])
    return np.concatenate([lo - pad, hi + pad], axis=1)


def _matched(kp2d: np.ndarray, alive: np.ndarray, ref: list[tuple[int, int, str]]) -> int:
    """Reference people with a lifted person's box around them, each box used once."""
    if not alive.any():
        return 0
    with np.errstate(invalid="ignore"):
        boxes = _boxes(kp2d[alive])
    used: set[int] = set()
    n = 0
    for x, y, _ in ref:
        inside = [
            (abs((b[0] + b[2]) / 2 - x), i)
            for i, b in enumerate(boxes)
            if i not in used and b[0] <= x <= b[2] and b[1] <= y <= b[3]
        ]
        if inside:
            used.add(min(inside)[1])
            n += 1
    return n


def run(cfg: Config, video: Path, conf: float, lifter, backend: str) -> dict:  # type: ignore[no-untyped-def]
    cls = YoloPoseDetector if cfg.low_boxes else _HighOnly
    size = (768, 576)  # the demo's frames: exports are fitted to them
    yolo = cls(None, imgsz=cfg.imgsz, device="cpu", conf=conf, backend=backend, frame_size=size)
    with VideoReader(video) as reader:
        yolo.detect(next(iter(reader)))  # warm-up: a backend's first call compiles
    det = _Counting(yolo)
    t0 = time.perf_counter()
    res = detect_video(
        video, detector=det, person="all", min_track_frames=cfg.min_track_frames,
        progress=False, stitch=cfg.stitch,
    )  # fmt: skip
    detect_s = res.timing.detect_s / max(res.timing.frames, 1)
    front_s = time.perf_counter() - t0
    pose3d = lift_in_world(lifter, res.poses, WorldConfig(), video)
    kept = np.isfinite(res.poses.keypoints).all(-1).all(-1)  # (F, P)
    lifted = np.isfinite(pose3d.joints).all(-1).all(-1)
    frames = res.timing.frames
    per_frame = {
        "raw>=0.25": np.array([(r >= 0.25).sum() for r in det.raw]),
        "raw>=0.1": np.array([(r >= 0.1).sum() for r in det.raw]),
        "tracked": np.array([int((t.track_ids >= 0).sum()) for t in det.tracked]),
        "kept": kept.sum(1)[:frames],
        "lifted": lifted.sum(1)[:frames],
    }
    matched = {f: _matched(res.poses.keypoints[f], lifted[f], REFERENCE[f]) for f in REFERENCE}
    return {
        "per_frame": per_frame, "matched": matched, "detect_s": detect_s, "front_s": front_s,
        "persons": res.poses.num_persons, "notes": res.notes,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=["before", "960", "1280"], choices=CONFIGS)
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--backend", default="torch", help="detector backend (auto: as hgmamba lift)")
    args = ap.parse_args()
    lifter = load_lifter(LiftOptions(video=DEMO))
    results = {}
    for name in args.configs:
        results[name] = run(CONFIGS[name], DEMO, args.conf, lifter, args.backend)
        print(f"[{name}] done: {results[name]['persons']} persons, {results[name]['notes']}")
    visible = {f: len(r) for f, r in REFERENCE.items()}
    print(
        "\nper reference frame: in view (of them half behind the post / far) | "
        + ", ".join(
            f"f{f}: {visible[f]} ({sum(1 for p in REFERENCE[f] if p[2])})" for f in REFERENCE
        )
    )
    keys = ["raw>=0.25", "raw>=0.1", "tracked", "kept", "lifted"]
    header = "config".ljust(14) + "".join(k.rjust(11) for k in keys) + "  matched".rjust(9)
    for f in REFERENCE:
        print(f"\nframe {f} ({visible[f]} in view)\n{header}")
        for name, r in results.items():
            row = "".join(str(int(r["per_frame"][k][f])).rjust(11) for k in keys)
            print(name.ljust(14) + row + str(r["matched"][f]).rjust(9))
    print(f"\nmean over all frames\n{header[:-9]}  persons  detect s/frame (ratio)")
    base = next(iter(results.values()))["detect_s"]
    for name, r in results.items():
        row = "".join(f"{r['per_frame'][k].mean():11.2f}" for k in keys)
        ratio = r["detect_s"] / base
        print(name.ljust(14) + row + f"{r['persons']:9d}  {r['detect_s']:.3f} ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
