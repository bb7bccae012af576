"""End-to-end frames/s of `hgmamba lift` on a 720p clip, per stage, plus the lift-stage ratio of
our blended windows vs one lifter window per frame (the MotionAGFormer/PoseFormerV2 demo way).

    python bench/lift.py                       # 100 frames of 720p, XS, detector at 320 px
    python bench/lift.py --imgsz 640 --render  # default detector size, with the video render

The 720p clip is made from OpenCV's vtest.avi (../shared/media, else the shipped demo clip):
frames resized to 960x720 and padded to 1280x720. The lifter is the shipped XS checkpoint if
present, else an untrained XS model (same speed; accuracy is not measured here).

Baseline ("per-frame windows"): for every frame, the T frames centred on it (edge-replicated at
the ends) go through the lifter and only the centre frame is kept. Both methods run the same
model, batch size and flip setting on the same dense track; the ratio is measured in one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hgmamba_core.lift import Lifter, flip_xy_conf  # noqa: E402
from hgmamba_core.pipeline import LiftOptions, find_asset, run_lift  # noqa: E402
from hgmamba_core.poses import normalize_screen  # noqa: E402


def source_video() -> Path:
    shared = REPO.parent / "shared" / "media" / "vtest.avi"
    return shared if shared.is_file() else REPO / "assets" / "demo" / "vtest_10s.mp4"


def make_720p(src: Path, dst: Path, frames: int) -> Path:
    """Resize (keep aspect) and pad the source frames into a 1280x720 mp4."""
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    vw = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, (1280, 720))
    n = 0
    while n < frames:
        ok, f = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)  # loop a short source
            continue
        h, w = f.shape[:2]
        s = 720 / h
        f = cv2.resize(f, (int(round(w * s)), 720), interpolation=cv2.INTER_AREA)[:, :1280]
        pad = 1280 - f.shape[1]
        f = cv2.copyMakeBorder(f, 0, 0, pad // 2, pad - pad // 2, cv2.BORDER_CONSTANT)
        vw.write(f)
        n += 1
    vw.release()
    cap.release()
    return dst


def checkpoint(tmp: Path, variant: str) -> tuple[Path, str]:
    shipped = find_asset(Path("weights") / f"hgmamba_{variant}_h36m.pt")
    if shipped is not None:
        return shipped, "shipped"
    from hgmamba_core.model import build_model
    from hgmamba_core.model.checkpoint import save_checkpoint

    torch.manual_seed(0)
    return save_checkpoint(tmp / f"{variant}.pt", build_model(variant)), "untrained (speed only)"


def per_frame_windows(lifter: Lifter, track: np.ndarray) -> np.ndarray:
    """Baseline: one T-frame window centred on each frame, keep its centre prediction."""
    T, F = lifter.T, track.shape[0]
    half = T // 2
    out = np.empty((F, 17, 3), np.float32)
    for a in range(0, F, lifter.batch_size):
        frames = np.arange(a, min(F, a + lifter.batch_size))
        idx = np.clip(frames[:, None] + np.arange(-half, T - half)[None], 0, F - 1)
        batch = track[idx]  # (B, T, 17, 3), edge replication at the ends
        x = np.concatenate([batch, flip_xy_conf(batch)]) if lifter.flip else batch
        with torch.inference_mode():
            y = lifter.model(torch.from_numpy(x).to(lifter.device))
            if lifter.flip:
                from hgmamba_core.lift import flip_3d

                y = 0.5 * (y[: len(frames)] + flip_3d(y[len(frames) :]))
        out[frames] = y[:, half].float().cpu().numpy()
    return out


def dense_track(pose2d_file: Path, F: int) -> np.ndarray:
    """The run's main 2D track, gaps filled by holding the last pose, normalized (F, 17, 3)."""
    with np.load(pose2d_file) as z:
        kp, sc, size = z["keypoints"][:, 0], z["scores"][:, 0], tuple(z["size"])
    ok = np.isfinite(kp).all(axis=(1, 2))
    if not ok.any():  # nobody found: a fixed synthetic pose keeps the timing meaningful
        kp = np.tile(np.linspace(300, 500, 34, dtype=np.float32).reshape(1, 17, 2), (F, 1, 1))
        sc, ok = np.ones((F, 17), np.float32), np.ones(F, bool)
    idx = np.maximum.accumulate(np.where(ok, np.arange(F), -1))
    idx[idx < 0] = np.flatnonzero(ok)[0]
    xy = normalize_screen(kp[idx], *size)
    return np.concatenate([xy, np.nan_to_num(sc[idx], nan=0.0)[..., None]], -1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--variant", default="xs")
    ap.add_argument("--render", action="store_true", help="include the side-by-side video")
    ap.add_argument("--no-flip", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("YOLO_OFFLINE", "1")

    with tempfile.TemporaryDirectory(prefix="hgmamba-bench-") as d:
        tmp = Path(d)
        clip = make_720p(source_video(), tmp / "clip720p.mp4", args.frames)
        ckpt, kind = checkpoint(tmp, args.variant)
        t0 = time.perf_counter()
        rep = run_lift(
            LiftOptions(
                video=clip, checkpoint=ckpt, out=tmp / "out", detector_imgsz=args.imgsz,
                render=args.render, flip=not args.no_flip, device=args.device, progress=False,
            )
        )  # fmt: skip
        wall = time.perf_counter() - t0
        print(f"hgmamba lift, {rep.frames} frames 1280x720, HGMamba-{rep.variant} ({kind}), "
              f"detector imgsz {args.imgsz}, flip {not args.no_flip}, torch threads {args.threads}, "
              f"{rep.device}, {rep.persons} person(s)")  # fmt: skip
        total = 0.0
        for name, st in rep.stages.items():
            total += st.seconds
            print(f"  {name:8s} {st.seconds:7.2f} s  {st.fps:8.1f} frames/s")
        print(f"  {'stages':8s} {total:7.2f} s  {rep.frames / total:8.1f} frames/s end to end")
        print(f"  {'wall':8s} {wall:7.2f} s  {rep.frames / wall:8.1f} frames/s incl. model loading")

        # lift stage: ours vs per-frame windows, same model, same dense track
        import hgmamba_core

        model = hgmamba_core.load_lifter(ckpt, device=args.device)
        lifter = Lifter(model, T=model.cfg.frames, variant=model.cfg.name, flip=not args.no_flip)
        track = dense_track(rep.out_dir / "pose2d.npz", rep.frames)
        lifter.lift_track(track[: lifter.T])  # warm-up
        t0 = time.perf_counter()
        lifter.lift_track(track)
        ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        per_frame_windows(lifter, track)
        base = time.perf_counter() - t0
        F = track.shape[0]
        print(f"lift stage on one {F}-frame track (T={lifter.T}, batch {lifter.batch_size}):")
        print(f"  blended windows   {ours:7.2f} s  {F / ours:8.1f} frames/s")
        print(f"  per-frame windows {base:7.2f} s  {F / base:8.1f} frames/s")
        print(f"  ratio {base / ours:.1f}x (goal >= 5x)")


if __name__ == "__main__":
    main()
