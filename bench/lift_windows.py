"""`hgmamba lift`'s window stride and flip TTA: accuracy against lifter work, one run.

    python bench/lift_windows.py [--data ../shared/data/h36m] [--two-d sh] [--clips-every 8]
                                 [--max-frames 400] [--strides 13 18 27] [--flip on off]
                                 [CHECKPOINT ...]

The lift stage (`lift.Lifter`, what `hgmamba lift` runs on every track) cuts a track into
T-frame windows at a stride and blends their overlaps; flip TTA lifts every window mirrored as
well. Both multiply the lifter's work per video frame, so they are the lift stage's speed
levers. Here real S9/S11 clips (every `--clips-every`-th (sequence, camera) pair, the first
`--max-frames` frames at the checkpoint's training frame rate) go through `Lifter.lift_tracks`
exactly as a video's track would, with each setting in turn per clip (so a busy machine slows
all alike), and P1/P2 (mm, mean over frames) are printed beside the windows lifted per frame
and the summed seconds, with ratios to the baseline (stride T // 2, the default before
2026-12-03, flip on); the current default (`lift.default_stride`) is always among the rows. MPJVE (mm per
frame, the error of frame-to-frame motion, per clip) is there because a seam between windows
would show as jitter in the video rather than in P1.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from hgmamba_core import load_lifter, metrics
from hgmamba_core.data.h36m import load_h36m
from hgmamba_core.data.windows import clip_inputs, clip_targets
from hgmamba_core.lift import Lifter, default_stride, window_starts

DEFAULT_CHECKPOINTS = ("assets/weights/hgmamba_xs_wild.pt", "assets/weights/hgmamba_xs_h36m_sh.pt")


def settings(T: int, strides: list[int], flips: list[bool]) -> list[tuple[int, bool]]:
    """(stride, flip) pairs: the baseline (T // 2, flip) first, then the current default."""
    wanted = [(max(1, T // 2), True), (default_stride(T), True)]
    wanted += [(s, flip) for s in strides for flip in flips]
    return list(dict.fromkeys(wanted))


def run_checkpoint(path: str, clips, max_frames: int, rows_of) -> None:
    model = load_lifter(path)
    T, fs = model.cfg.frames, int(model.meta.get("frame_stride") or 1)
    rows = rows_of(T)
    preds = {r: [] for r in rows}
    secs = dict.fromkeys(rows, 0.0)
    windows = dict.fromkeys(rows, 0)
    gts, frames = [], 0
    for clip in clips:
        x = clip_inputs(clip)[::fs][:max_frames]
        gts.append(clip_targets(clip)[::fs][:max_frames])
        frames += len(x)
        for r in rows:
            lifter = Lifter(model, T=T, stride=r[0], flip=r[1])
            t0 = time.perf_counter()
            (y,) = lifter.lift_tracks([x])
            secs[r] += time.perf_counter() - t0
            windows[r] += len(window_starts(max(len(x), T), T, r[0])) * (2 if r[1] else 1)
            preds[r].append(y)
    gt = np.concatenate(gts)
    n = np.array([len(g) for g in gts], np.float64)
    print(f"\n{path}: T={T}, frame stride {fs}, {len(clips)} clips, {frames} frames")
    print(
        "stride  flip  window-frames/frame  seconds  time/base   P1 mm   P2 mm   dP1    dP2  MPJVE"
    )
    base = None
    for r in rows:
        p = np.concatenate(preds[r])
        p1, p2 = 1000 * metrics.mpjpe(p, gt), 1000 * metrics.p_mpjpe(p, gt)
        ve = [metrics.mpjve(y, g) for y, g in zip(preds[r], gts, strict=True)]
        mpjve = 1000 * float(np.average(ve, weights=n - 1))
        base = base or (secs[r], p1, p2)
        print(
            f"{r[0]:6d}  {'on' if r[1] else 'off':4s}  {windows[r] * T / frames:19.2f}"
            f"  {secs[r]:7.2f}  {secs[r] / base[0]:9.2f}  {p1:6.2f}  {p2:6.2f}"
            f"  {p1 - base[1]:+5.2f}  {p2 - base[2]:+5.2f}  {mpjve:5.2f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="*", default=list(DEFAULT_CHECKPOINTS))
    ap.add_argument("--data", default="../shared/data/h36m")
    ap.add_argument("--two-d", default="sh", choices=["gt", "sh"])
    ap.add_argument("--clips-every", type=int, default=8)
    ap.add_argument("--max-frames", type=int, default=400)
    ap.add_argument("--strides", type=int, nargs="+", default=[13, 18, 27])
    ap.add_argument("--flip", nargs="+", default=["on", "off"], choices=["on", "off"])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    clips = load_h36m(Path(args.data), ["S9", "S11"], two_d=args.two_d)[:: args.clips_every]
    flips = [f == "on" for f in args.flip]
    for path in args.checkpoints:
        run_checkpoint(path, clips, args.max_frames, lambda T: settings(T, args.strides, flips))


if __name__ == "__main__":
    main()
