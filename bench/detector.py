"""Benchmark the 2D front end: detector frames/s per imgsz/device, and what the rest costs.

    python bench/detector.py [--frames 30] [--imgsz 320 480 640] [--threads 2] [--video PATH]
                             [--backends torch onnx openvino] [--repeats 3]

For each backend (torch on cpu, and cuda when present; ONNX Runtime and OpenVINO on the CPU when
installed, exported once into the cache) and imgsz: YOLO-Pose predict and track (predict +
Ultralytics' ByteTrack) ms/frame on real frames of the demo clip, the median over all calls of
--repeats rounds. Each setting is timed in its own child process, the settings taking turns
round by round so a busy machine slows them alike: in one process the runtimes' thread pools
(ONNX Runtime's and OpenVINO's spin after each call) steal the CPU from whoever runs next
(--in-process shows it: every frame given to every setting in turn). Then
each backend's speed-up over torch at the same imgsz. Accuracy: per imgsz, each exported
backend's keypoints against torch's on the same frames (people matched by box IoU >= 0.5;
mean pixel distance of joints both call confident, and the share of torch's people found).
Then the rest of the front
end per frame, as a percentage of the detector's time at the same setting: decoding, our
per-frame bookkeeping (TrackStore.add), and the end-of-video work (person selection, dense
arrays, COCO->H36M remap, cleaning) measured on a synthetic 10-minute, 30 fps track store
with 8 people so its per-frame share is not hidden by a short clip. All ratios come from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from detectors.base import FrameDetections  # noqa: E402
from detectors.compare import keypoint_agreement  # noqa: E402
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


def _installed_backends() -> list[str]:
    from detectors.backends import missing_packages

    return ["torch"] + [b for b in ("onnx", "openvino") if not missing_packages(b)]


def _time_round(
    dets: dict[tuple[str, int], YoloPoseDetector],
    frames: list[np.ndarray],
    times: dict[tuple[str, int, str], list[float]],
) -> None:
    """One round: frame by frame, every setting in turn (predict, then a tracking pass), each
    call's seconds appended to `times`; interleaving per frame lets a busy machine's bursts
    fall on all settings alike."""
    for mode in ("predict", "track"):
        for det in dets.values():
            det.reset()
            for f in frames[:2]:  # warm-up
                det.detect(f)
        for f in frames:
            for key, det in dets.items():
                call = det.track if mode == "track" else det.detect
                t0 = time.perf_counter()
                call(f)
                if det.device != "cpu":
                    torch.cuda.synchronize()
                times.setdefault((*key, mode), []).append(time.perf_counter() - t0)


def _child_times(args: argparse.Namespace, dev: str, backend: str, sz: int) -> dict:
    """{"predict": [s, ...], "track": [s, ...]} of one setting, timed in a fresh process."""
    cmd = [
        sys.executable, __file__, "--child", dev, backend, str(sz), "--frames", str(args.frames),
        "--threads", str(args.threads), "--video", str(args.video),
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _run_child(args: argparse.Namespace) -> None:
    """--child DEV BACKEND SZ: time that one setting (after warm-up) and print JSON."""
    dev, backend, sz = args.child[0], args.child[1], int(args.child[2])
    frames, _ = _frames(args.video, args.frames)
    key = (f"{dev}/{backend}", sz)
    size = (frames[0].shape[1], frames[0].shape[0])
    dets = {key: YoloPoseDetector(imgsz=sz, device=dev, backend=backend, frame_size=size)}
    times: dict[tuple[str, int, str], list[float]] = {}
    _time_round(dets, frames, times)
    print(json.dumps({m: times[(*key, m)] for m in ("predict", "track")}))


def _print_speed(
    dets: dict[tuple[str, int], YoloPoseDetector],
    times: dict[tuple[str, int, str], list[float]],
    decode_s: float,
    rest: float,
) -> None:
    print(
        f"{'backend':14} {'imgsz':>5} {'predict ms':>10} {'x torch':>7} {'track ms':>9} "
        f"{'x torch':>7} {'ByteTrack %':>11} {'decode %':>8} {'rest %':>7}"
    )
    med = {k: float(np.median(v)) for k, v in times.items()}
    for name, sz in dets:
        t_pred, t_track = med[(name, sz, "predict")], med[(name, sz, "track")]
        base = ("cpu/torch", sz)
        x_pred = med.get((*base, "predict"), float("nan")) / t_pred
        x_track = med.get((*base, "track"), float("nan")) / t_track
        print(
            f"{name:14} {sz:5d} {t_pred * 1e3:10.1f} {x_pred:7.2f} {t_track * 1e3:9.1f} "
            f"{x_track:7.2f} {100 * (t_track - t_pred) / t_pred:11.2f} "
            f"{100 * decode_s / t_track:8.2f} {100 * rest / t_track:7.3f}"
        )


def _print_agreement(
    dets: dict[tuple[str, int], YoloPoseDetector], frames: list[np.ndarray]
) -> None:
    """Each exported backend against cpu/torch at the same imgsz, on the same frames."""
    ref: dict[int, list[FrameDetections]] = {}
    print(f"{'backend':14} {'imgsz':>5} {'mean px diff':>12} {'people found':>12} {'joints':>7}")
    for (name, sz), det in dets.items():
        if not name.startswith("cpu/"):
            continue
        out = [det.detect(f) for f in frames]
        if name == "cpu/torch":
            ref[sz] = out
            n = sum(len(d) for d in out)
            print(f"{name:14} {sz:5d} {'(reference)':>12} {n:12d} {'':>7}")
            continue
        mean, share, joints = keypoint_agreement(ref[sz], out)
        print(f"{name:14} {sz:5d} {mean:12.2f} {100 * share:11.1f}% {joints:7d}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--imgsz", type=int, nargs="+", default=[320, 480, 640])
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave)")
    ap.add_argument("--video", type=Path, default=REPO / "assets" / "demo" / "vtest_10s.mp4")
    ap.add_argument(
        "--backends", nargs="+", default=None, help="torch onnx openvino (default: all installed)"
    )
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds (median kept)")
    ap.add_argument("--in-process", action="store_true", help="time all settings in one process")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        _run_child(args)
        return
    frames, decode_s = _frames(args.video, args.frames)
    backends = args.backends or _installed_backends()
    runs = [("cpu", b) for b in backends]
    if torch.cuda.is_available() and "torch" in backends:
        runs.append(("cuda", "torch"))
    print(
        f"video {args.video.name}: {len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]}"
    )
    print(f"torch threads {torch.get_num_threads()}, runs {[d + '/' + b for d, b in runs]}")
    t_add, t_end = _post_cost()
    rest = t_add + t_end
    print(
        f"decode {decode_s * 1e3:.2f} ms/frame; our bookkeeping {t_add * 1e6:.1f} us/frame; "
        f"selection+remap+cleaning {t_end * 1e6:.1f} us/frame (10 min, 30 fps, 8 people)"
    )
    dets = {
        (f"{dev}/{b}", sz): YoloPoseDetector(
            imgsz=sz, device=dev, backend=b, frame_size=(frames[0].shape[1], frames[0].shape[0])
        )
        for dev, b in runs
        for sz in args.imgsz
    }  # exports happen here, before any timing
    for (name, sz), det in dets.items():
        for note in det.notes:
            print(f"note: {name} {sz}: {note}")
    times: dict[tuple[str, int, str], list[float]] = {}
    for _ in range(args.repeats):
        if args.in_process:
            _time_round(dets, frames, times)
            continue
        for name, sz in dets:
            dev, backend = name.split("/")
            for mode, t in _child_times(args, dev, backend, sz).items():
                times.setdefault((name, sz, mode), []).extend(t)
    _print_speed(dets, times, decode_s, rest)
    print(
        f"x torch = cpu/torch ms / this ms at the same imgsz (medians of per-frame calls, "
        f"{'one process' if args.in_process else 'a process per setting and round'}); "
        "rest % = (our bookkeeping + end-of-video work) / (detector + tracker) per frame"
    )
    _print_agreement(dets, frames)


if __name__ == "__main__":
    main()
