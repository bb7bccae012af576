"""What a first run's OpenVINO export of the detector costs against what it saves on one clip.

    python bench/export_cost.py [--samples 12] [--threads 2]

Two settings: the demo (its 768x576 frames, detector at 1280, 100 frames) and a short 720p clip
(the demo's frames scaled to 1280x720, detector at 640, 150 frames = 5 s at 30 fps). For each:
the export into an empty cache (wall and CPU seconds), then YOLO-Pose predict ms/frame with
torch and with the export (median of --samples frames after 2 warm-up calls; each backend in
its own child process, as OpenVINO's spinning thread pool would slow whoever runs next in one
process; --rounds rounds taking turns, the best median kept), and the net for that clip's length: export +
frames x OpenVINO against frames x torch, i.e. what running torch this time would save or
cost, and the clip length from which the export pays. All numbers from one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

DEMO = REPO / "assets" / "demo" / "vtest_10s.mp4"
SETTINGS = (("demo 768x576 @1280", None, 1280, 100), ("720p @640", (1280, 720), 640, 150))


def demo_frames(count: int, size: tuple[int, int] | None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(DEMO))
    frames = []
    while len(frames) < count:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f if size is None else cv2.resize(f, size, interpolation=cv2.INTER_LINEAR))
    cap.release()
    return frames


def timed_detector(backend: str, imgsz: int, frame_size: tuple[int, int]):
    """(detector, wall s, CPU s) of building it; for openvino that includes the export."""
    from detectors.yolo import YoloPoseDetector

    t, c = time.perf_counter(), time.process_time()
    det = YoloPoseDetector(imgsz=imgsz, backend=backend, frame_size=frame_size, device="cpu")
    return det, time.perf_counter() - t, time.process_time() - c


def child_ms(backend: str, imgsz: int, size: tuple[int, int] | None, samples: int) -> float:
    """In this (child) process: median ms per predict after 2 warm-up calls."""
    frames = demo_frames(samples + 2, size)
    h, w = frames[0].shape[:2]
    det, _, _ = timed_detector(backend, imgsz, (w, h))
    assert det.backend == backend, det.notes
    for f in frames[:2]:
        det.detect(f)
    times = []
    for f in frames[2:]:
        t = time.perf_counter()
        det.detect(f)
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


def per_frame_ms(imgsz: int, size, samples: int, rounds: int, threads: int) -> dict[str, float]:
    """Best-of-rounds median ms per predict, torch and openvino in child processes, in turns."""
    best = {"torch": float("inf"), "openvino": float("inf")}
    for _ in range(rounds):
        for backend in best:
            spec = "none" if size is None else f"{size[0]}x{size[1]}"
            cmd = [sys.executable, __file__, "--child", backend, str(imgsz), spec,
                   "--samples", str(samples), "--threads", str(threads)]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            best[backend] = min(best[backend], float(out.strip().splitlines()[-1]))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=12, help="timed frames per backend")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        backend, imgsz, spec = args.child
        size = None if spec == "none" else tuple(int(v) for v in spec.split("x"))
        print(child_ms(backend, int(imgsz), size, args.samples))
        return
    for label, size, imgsz, clip_frames in SETTINGS:
        h, w = demo_frames(1, size)[0].shape[:2]
        with tempfile.TemporaryDirectory(prefix="hgmamba-export-") as cache:
            os.environ["HGMAMBA_CACHE"] = cache
            ov, ex_wall, ex_cpu = timed_detector("openvino", imgsz, (w, h))
            if ov.backend != "openvino":
                print(f"{label}: no OpenVINO export here ({'; '.join(ov.notes)})")
                continue
            _, warm_wall, _ = timed_detector("openvino", imgsz, (w, h))  # load only
            _, pt_wall, _ = timed_detector("torch", imgsz, (w, h))
            ms = per_frame_ms(imgsz, size, args.samples, args.rounds, args.threads)
        saved = clip_frames * (ms["torch"] - ms["openvino"]) / 1000
        export = ex_wall - warm_wall
        gain = (ms["torch"] - ms["openvino"]) / 1000
        pays = f"pays from {export / gain:.0f} frames" if gain > 0 else "never pays here"
        print(
            f"{label} ({w}x{h}, export {ov.input_size}): export {ex_wall:.1f} s wall / {ex_cpu:.1f}"
            f" s CPU (loading a cached one {warm_wall:.1f} s, torch {pt_wall:.1f} s); per frame "
            f"torch {ms['torch']:.0f} ms, OpenVINO {ms['openvino']:.0f} ms "
            f"({ms['torch'] / ms['openvino']:.2f}x); over {clip_frames} frames OpenVINO saves "
            f"{saved:.1f} s against the export's {export:.1f} s: net {saved - export:+.1f} s "
            f"({pays})",
            flush=True,
        )


if __name__ == "__main__":
    main()
