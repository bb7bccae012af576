"""Peak memory (RSS) of `hgmamba lift` on a long 1080p video: does it stay bounded?

    python bench/memory.py                   # 10 min of 1080p at 2 fps (1200 frames) vs 1 min
    python bench/memory.py --fps 10 --no-render --person all

Frames are streamed (decode -> detect -> keep only keypoints; the render re-reads the video),
so peak RSS should not grow with the video's length. This script synthesises two 1920x1080
videos of the same frame rate from OpenCV's vtest.avi (resized to 1440x1080, padded, looped):
a short one (default 1 minute) and a long one (default 10 minutes), runs the real CLI on each
in a fresh process and reports each process's peak RSS (os.wait4's ru_maxrss) and the ratio.
The frame rate is kept low by default so the 10-minute run takes minutes, not an hour, on a
2-core CPU: memory depends on the number of frames, which --fps scales. The outputs themselves
are dense frames x persons arrays, so with --person all on this looped footage (new track ids on
every loop) memory grows with frames x persons, as the output files do. Not a test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def source_video() -> Path:
    shared = REPO.parent / "shared" / "media" / "vtest.avi"
    return shared if shared.is_file() else REPO / "assets" / "demo" / "vtest_10s.mp4"


def make_1080p(src: Path, dst: Path, frames: int, fps: float) -> Path:
    cap = cv2.VideoCapture(str(src))
    vw = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, (1920, 1080))
    n = 0
    while n < frames:
        ok, f = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        h, w = f.shape[:2]
        f = cv2.resize(f, (int(round(w * 1080 / h)), 1080), interpolation=cv2.INTER_LINEAR)
        pad = 1920 - f.shape[1]
        vw.write(cv2.copyMakeBorder(f, 0, 0, pad // 2, pad - pad // 2, cv2.BORDER_CONSTANT))
        n += 1
    vw.release()
    cap.release()
    return dst


def peak_rss_of_lift(
    video: Path, ckpt: Path, out: Path, extra: list[str]
) -> tuple[float, float, int]:
    """(peak RSS MiB, seconds, exit code) of one `hgmamba lift` process."""
    cmd = [sys.executable, "-m", "hgmamba_cli.app", "lift", str(video), "--checkpoint", str(ckpt),
           "--out", str(out), *extra]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
    if proc.returncode != 0:
        print(f"  failed ({proc.returncode}): {err[-300:]}")
    return usage.ru_maxrss / 1024.0, time.perf_counter() - t0, proc.returncode  # KiB -> MiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--short-minutes", type=float, default=1.0)
    ap.add_argument("--fps", type=float, default=2.0)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--no-render", action="store_true")
    ap.add_argument("--variant", default="xs")
    ap.add_argument("--person", default="main", help="main (default) or all: output is F x P")
    args = ap.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")

    import torch

    from hgmamba_core.model import build_model
    from hgmamba_core.model.checkpoint import save_checkpoint
    from hgmamba_core.pipeline import find_asset

    extra = ["--detector-imgsz", str(args.imgsz), "--person", args.person]
    if args.no_render:
        extra.append("--no-render")
    with tempfile.TemporaryDirectory(prefix="hgmamba-mem-") as d:
        tmp = Path(d)
        ckpt = find_asset(Path("weights") / f"hgmamba_{args.variant}_h36m.pt")
        if ckpt is None:
            torch.manual_seed(0)
            ckpt = save_checkpoint(tmp / "lifter.pt", build_model(args.variant))
        results = []
        for minutes in (args.short_minutes, args.minutes):
            frames = int(round(minutes * 60 * args.fps))
            video = make_1080p(source_video(), tmp / f"long_{frames}.mp4", frames, args.fps)
            mb = video.stat().st_size / 2**20
            rss, secs, rc = peak_rss_of_lift(video, ckpt, tmp / "out", extra)
            results.append((minutes, frames, rss))
            persons = 0
            if rc == 0:
                with np.load(tmp / "out" / video.stem / "pose2d.npz") as z:
                    persons = int(z["track_ids"].shape[0])
            print(f"{minutes:5.1f} min 1920x1080 @ {args.fps:g} fps = {frames:5d} frames "
                  f"({mb:.0f} MiB file, decoded {frames * 1920 * 1080 * 3 / 2**30:.1f} GiB): "
                  f"{persons} person(s) lifted: peak RSS {rss:7.1f} MiB, {secs:6.1f} s, exit {rc}")  # fmt: skip
            video.unlink()
        (m0, f0, r0), (m1, f1, r1) = results
        print(f"{f1 / f0:.1f}x the frames -> {r1 / r0:.2f}x the peak RSS "
              f"(render {'off' if args.no_render else 'on'}, detector imgsz {args.imgsz})")  # fmt: skip


if __name__ == "__main__":
    main()
