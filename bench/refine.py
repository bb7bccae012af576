"""Small people: whole frame at a large imgsz vs a modest imgsz plus pose on upscaled crops.

    python bench/refine.py [--frames 100] [--big 960] [--small 640] [--crop 256]
                           [--backends torch openvino] [--threads 2] [--video PATH]

On the demo clip (~80 px people), per backend and frame by frame in turn (so a busy machine
slows all alike): the reference tracks the whole frame at --big; the candidate tracks it at
--small (its time alone is the plain --small run) and then re-runs pose on each tracked
person's crop at --crop (detectors/refine.py). Reported: ms/frame and speed-up over the
reference, people per frame, and keypoint agreement with the reference (people paired by box
IoU >= 0.5; mean pixel distance of joints both call confident; share of the reference's
people found). The reference is itself a detector's output, not ground truth.
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
from detectors.compare import keypoint_agreement  # noqa: E402
from detectors.refine import CropRefiner  # noqa: E402
from detectors.yolo import YoloPoseDetector  # noqa: E402
from hgmamba_core.video import VideoReader  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _frames(path: Path, n: int) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    with VideoReader(path) as r:
        for f in r:
            out.append(f)
            if len(out) == n:
                break
    return out


def _run(
    frames: list[np.ndarray], big: YoloPoseDetector, small: YoloPoseDetector, ref: CropRefiner
) -> dict[str, tuple[list[FrameDetections], float]]:
    """Each setting's detections and seconds per frame, the settings visited frame by frame."""
    for d in (big, small):
        d.reset()
    out: dict[str, list[FrameDetections]] = {"big": [], "small": [], "small+crops": []}
    secs = dict.fromkeys(out, 0.0)
    for f in frames:
        t0 = time.perf_counter()
        out["big"].append(big.track(f))
        t1 = time.perf_counter()
        d = small.track(f)
        t2 = time.perf_counter()
        out["small+crops"].append(ref.refine(f, d))
        t3 = time.perf_counter()
        out["small"].append(d)
        secs["big"] += t1 - t0
        secs["small"] += t2 - t1
        secs["small+crops"] += t3 - t1
    return {k: (v, secs[k] / len(frames)) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--big", type=int, default=960)
    ap.add_argument("--small", type=int, default=640)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--backends", nargs="+", default=["torch", "auto"])
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave)")
    ap.add_argument("--video", type=Path, default=REPO / "assets" / "demo" / "vtest_10s.mp4")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    frames = _frames(args.video, args.frames)
    print(f"video {args.video.name}: {len(frames)} frames, torch threads {torch.get_num_threads()}")
    print(
        f"{'backend':9} {'setting':>18} {'ms/frame':>9} {'x ref':>6} {'people/frame':>12} "
        f"{'px diff':>8} {'found %':>8}"
    )
    for backend in args.backends:
        mk = lambda sz: YoloPoseDetector(imgsz=sz, device="cpu", backend=backend)  # noqa: B023, E731
        big, small = mk(args.big), mk(args.small)
        refiner = CropRefiner(small, mk(args.crop))
        res = _run(frames, big, small, refiner)
        ref_dets, ref_s = res["big"]
        labels = {
            "big": f"{args.big}",
            "small": f"{args.small}",
            "small+crops": f"{args.small}+crops {args.crop}",
        }
        for key, (dets, s) in res.items():
            per = sum(len(d) for d in dets) / len(dets)
            if key == "big":
                diff, found = "(ref)", ""
            else:
                mean, share, _ = keypoint_agreement(ref_dets, dets)
                diff, found = f"{mean:.2f}", f"{100 * share:.1f}"
            print(
                f"{big.backend:9} {labels[key]:>18} {s * 1e3:9.1f} {ref_s / s:6.2f} {per:12.2f} "
                f"{diff:>8} {found:>8}"
            )


if __name__ == "__main__":
    main()
