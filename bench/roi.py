"""Tracking by crop (detectors/roi.py) against today's full-frame run: speed and agreement.

    python bench/roi.py [--clip single|demo|PATH] [--imgsz 640] [--crops 192 256 320]
                        [--full-every-s 0.5 1 2] [--frames 100] [--backend auto] [--threads 2]

The reference is `--detector-mode full`: every frame whole at --imgsz, ByteTrack ids. Each
candidate is `--detector-mode track` with one crop size and one full-frame interval. All
settings see the same decoded frames, visited frame by frame in turn, so a busy machine slows
them alike. Reported per setting: ms per frame (detector + tracker, decoding excluded) and the
speed-up over the reference, people per frame, full-frame passes (scheduled / after a lost
crop / crops too costly), and keypoint agreement with the reference (people paired by box IoU
>= 0.5; mean pixel distance of joints both call confident >= 0.5; share of the reference's
people found). The reference is a detector's output, not ground truth.

--clip single: the 720p single-person clip of bench/lift.py --clip single (made here);
--clip demo: assets/demo/vtest_10s.mp4 (run at 1280 by `hgmamba lift`: pass --imgsz 1280).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from detectors.base import FrameDetections  # noqa: E402
from detectors.compare import keypoint_agreement  # noqa: E402
from detectors.roi import build_roi_tracker  # noqa: E402
from detectors.yolo import YoloPoseDetector  # noqa: E402
from hgmamba_core.video import VideoReader  # noqa: E402


def _frames(path: Path, n: int) -> tuple[list[np.ndarray], float]:
    out: list[np.ndarray] = []
    with VideoReader(path) as r:
        fps = r.info.fps
        for f in r:
            out.append(f)
            if len(out) == n:
                break
    return out, fps


def _clip(name: str, frames: int, tmp: Path) -> Path:
    if name == "demo":
        return REPO / "assets" / "demo" / "vtest_10s.mp4"
    if name == "single":
        sys.path.insert(0, str(REPO / "bench"))
        import lift

        return lift.make_single_720p(lift.source_video(), tmp / "single720p.mp4", frames)
    return Path(name)


def _confirmed(d: FrameDetections) -> FrameDetections:
    """What TrackStore keeps of a frame: detections with a track id."""
    k = d.track_ids >= 0
    return FrameDetections(d.keypoints[k], d.scores[k], d.boxes[k], d.box_scores[k], d.track_ids[k])


def _main_track(dets: list[FrameDetections]) -> int:
    """The reference's main person (as --person main picks it): largest summed box area."""
    areas: dict[int, float] = {}
    for d in dets:
        for tid, a in zip(d.track_ids.tolist(), d.box_areas.tolist(), strict=True):
            areas[tid] = areas.get(tid, 0.0) + a
    return max(areas, key=areas.__getitem__) if areas else -1


def _only(d: FrameDetections, tid: int) -> FrameDetections:
    k = d.track_ids == tid
    return FrameDetections(d.keypoints[k], d.scores[k], d.boxes[k], d.box_scores[k], d.track_ids[k])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default="single")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--crops", type=int, nargs="+", default=[192, 256, 320])
    ap.add_argument("--full-every-s", type=float, nargs="+", default=[1.0])
    ap.add_argument("--scales", type=float, nargs="+", default=[1.4], help="crop side / box side")
    ap.add_argument("--follow", nargs="+", default=["all"], choices=("all", "main"))
    ap.add_argument(
        "--crop-threads", type=int, nargs="+", default=[0], help="OpenVINO threads, 0: all"
    )
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="hgmamba-roi-") as d:
        clip = _clip(args.clip, args.frames, Path(d))
        frames, fps = _frames(clip, args.frames)
    h, w = frames[0].shape[:2]
    ref = YoloPoseDetector(imgsz=args.imgsz, device="cpu", backend=args.backend, frame_size=(w, h))
    settings = {"full": ref}
    grid = itertools.product(
        args.crops, args.full_every_s, args.scales, args.follow, args.crop_threads
    )
    for c, k, sc, fol, thr in grid:
        frame_det = YoloPoseDetector(
            imgsz=args.imgsz, device="cpu", backend=args.backend, frame_size=(w, h)
        )
        settings[f"track {c} x{sc:g} {k:g}s {fol} {thr}t"] = build_roi_tracker(
            frame_det, None, fps=fps, frame_size=(w, h), crop_size=c, full_every_s=k,
            crop_scale=sc, follow=fol, crop_threads=thr or None,
        )  # fmt: skip
    out: dict[str, list[FrameDetections]] = {k: [] for k in settings}
    secs = dict.fromkeys(settings, 0.0)
    for det in settings.values():
        det.reset()
        det.track(frames[0])  # warm-up (first calls allocate)
        det.reset()
    for f in frames:
        for name, det in settings.items():
            t0 = time.perf_counter()
            out[name].append(_confirmed(det.track(f)))
            secs[name] += time.perf_counter() - t0
    n = len(frames)
    print(f"{clip.name}: {n} frames {w}x{h} at {fps:g} fps, detector imgsz {args.imgsz}, "
          f"backend {ref.backend}, torch threads {torch.get_num_threads()}")  # fmt: skip
    main_id = _main_track(out["full"])
    ref_main = [_only(x, main_id) for x in out["full"]]
    print(f"{'setting':>32} {'ms/frame':>9} {'x full':>7} {'people/fr':>9} {'full passes':>14} "
          f"{'px diff':>8} {'found %':>8} {'main px':>8} {'main %':>7}")  # fmt: skip
    ref_s = secs["full"] / n
    for name, dets in out.items():
        s = secs[name] / n
        per = sum(len(x) for x in dets) / n
        if name == "full":
            passes, diff, found, mdiff, mfound = f"{n}", "(ref)", "", "", ""
        else:
            st = settings[name].stats
            passes = f"{st.full_scheduled}/{st.full_lost}/{st.full_costly}"
            mean, share, _ = keypoint_agreement(out["full"], dets)
            diff, found = f"{mean:.2f}", f"{100 * share:.1f}"
            mean, share, _ = keypoint_agreement(ref_main, dets)
            mdiff, mfound = f"{mean:.2f}", f"{100 * share:.1f}"
        print(f"{name:>32} {s * 1e3:9.1f} {ref_s / s:7.2f} {per:9.2f} {passes:>14} {diff:>8} "
              f"{found:>8} {mdiff:>8} {mfound:>7}")  # fmt: skip
    print(f"main: the reference's track {main_id} (largest summed box area), alone")


if __name__ == "__main__":
    main()
