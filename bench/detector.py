"""Benchmark the 2D front end: detector frames/s per imgsz/device, and what the rest costs.

    python bench/detector.py [--frames 30] [--imgsz 640 320] [--threads 2] [--video PATH] [--onnx]

For each device (cpu, and cuda when present; plus the ONNX Runtime CPU backend with --onnx,
exported once into the cache) and imgsz: YOLO-Pose predict and track (predict +
Ultralytics' ByteTrack) frames/s on real frames of the demo clip. Then the rest of the front
end per frame, as a percentage of the detector's time at the same setting: decoding, our
per-frame bookkeeping (TrackStore.add), and the end-of-video work (person selection, dense
arrays, COCO->H36M remap, cleaning) measured on a synthetic 10-minute, 30 fps track store
with 8 people so its per-frame share is not hidden by a short clip. All ratios come from one run.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from detectors.base import FrameDetections  # noqa: E402
from detectors.front_end import finish_tracks  # noqa: E402
from detectors.tracking import TrackStore, select_tracks  # noqa: E402
from detectors.yolo import YoloPoseDetector  # noqa: E402
from hgmamba_core.video import VideoReader  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _frames(path: Path, n: int) -> tuple[list[np.ndarray], float]:
    out: list[np.ndarray] = []
    t0 = time.perf_counter()
    with VideoReader(path) as r:
        for f in r:
            out.append(f)
            if len(out) == n:
                break
    return out, (time.perf_counter() - t0) / len(out)


def _time_detector(det: YoloPoseDetector, frames: list[np.ndarray], track: bool) -> float:
    """Seconds per frame after two warm-up frames."""
    det.reset()
    call = det.track if track else det.detect
    for f in frames[:2]:
        call(f)
    if det.device != "cpu":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for f in frames:
        call(f)
    if det.device != "cpu":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / len(frames)


def _synthetic_store(frames: int, people: int, rng: np.random.Generator) -> TrackStore:
    store = TrackStore()
    base = rng.uniform(100, 500, (people, 17, 2)).astype(np.float32)
    for i in range(frames):
        keep = rng.random(people) > 0.05  # 5 % of detections missing
        n = int(keep.sum())
        kp = base[keep] + rng.normal(0, 2, (n, 17, 2)).astype(np.float32)
        dets = FrameDetections(
            kp, rng.uniform(0.1, 1.0, (n, 17)), np.tile([100, 100, 200, 400], (n, 1)),
            np.full(n, 0.8), np.flatnonzero(keep) + 1,
        )  # fmt: skip
        store.add(i, dets)
    return store


def _post_cost(frames: int = 18_000, people: int = 8) -> tuple[float, float]:
    """(bookkeeping s/frame, end-of-video s/frame) on a synthetic long video."""
    rng = np.random.default_rng(0)
    store = _synthetic_store(frames, people, rng)
    # time only store.add, not the synthetic data generation: re-add the same detections
    dets = [
        FrameDetections(
            rng.uniform(0, 500, (people, 17, 2)),
            rng.uniform(0, 1, (people, 17)),
            np.tile([100, 100, 200, 400], (people, 1)),
            np.full(people, 0.8),
            np.arange(people) + 1,
        )  # fmt: skip
        for _ in range(200)
    ]
    s2 = TrackStore()
    t0 = time.perf_counter()
    for i, d in enumerate(dets):
        s2.add(i, d)
    t_add = (time.perf_counter() - t0) / len(dets)
    t0 = time.perf_counter()
    stats = store.stats()
    chosen = select_tracks(stats, "all", 30)
    kp, sc = store.dense(chosen)
    finish_tracks(
        kp, sc, np.asarray(chosen), layout="coco", fps=30.0, size=(1920, 1080), source="synthetic"
    )
    t_end = (time.perf_counter() - t0) / frames
    return t_add, t_end


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--imgsz", type=int, nargs="+", default=[640, 320])
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave)")
    ap.add_argument("--video", type=Path, default=REPO / "assets" / "demo" / "vtest_10s.mp4")
    ap.add_argument("--onnx", action="store_true", help="also time the ONNX Runtime backend")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    frames, decode_s = _frames(args.video, args.frames)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    runs = [(d, "torch") for d in devices] + ([("cpu", "onnx")] if args.onnx else [])
    print(
        f"video {args.video.name}: {len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]}"
    )
    print(f"torch threads {torch.get_num_threads()}, devices {devices}")
    t_add, t_end = _post_cost()
    rest = t_add + t_end
    print(
        f"decode {decode_s * 1e3:.2f} ms/frame; our bookkeeping {t_add * 1e6:.1f} us/frame; "
        f"selection+remap+cleaning {t_end * 1e6:.1f} us/frame (10 min, 30 fps, 8 people)"
    )
    print(
        f"{'device':10} {'imgsz':>5} {'predict ms':>10} {'fps':>6} {'track ms':>9} {'fps':>6} "
        f"{'ByteTrack %':>11} {'decode %':>8} {'rest %':>7}"
    )
    for dev, backend in runs:
        for sz in args.imgsz:
            det = YoloPoseDetector(imgsz=sz, device=dev, backend=backend)
            t_pred = _time_detector(det, frames, track=False)
            t_track = _time_detector(det, frames, track=True)
            print(
                f"{dev + '/' + backend:10} {sz:5d} {t_pred * 1e3:10.1f} {1 / t_pred:6.1f} {t_track * 1e3:9.1f} "
                f"{1 / t_track:6.1f} {100 * (t_track - t_pred) / t_pred:11.2f} "
                f"{100 * decode_s / t_track:8.2f} {100 * rest / t_track:7.3f}"
            )
    print(
        "rest % = (our bookkeeping + end-of-video work) per frame / (detector + tracker) per frame"
    )


if __name__ == "__main__":
    main()
