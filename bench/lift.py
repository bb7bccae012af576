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

--clip single: a 720p clip of one person instead: of the tracks in the source's first 3 x
--frames frames (our detector at 960) that last at least half of --frames, the one farthest from
its nearest neighbour; its frames only (up to --frames), followed by a 256x144 window (its
keypoints' mean, smoothed) scaled 5x to 1280x720, so the person is ~400 px tall.
--detector-modes full track: `hgmamba lift` once per detector mode (whole frames / tracking by
crop, detectors/roi.py), one after the other on the same clip, with their ratio; default track.
--overlap: the front end with decoding inline vs on the prefetch thread (hgmamba_core/
prefetch.py), and the render with and without it, alternating, in this run.
--mediapipe-python PATH: MediaPipe Pose (bench/mediapipe_pose.py) on the same clip in that
interpreter (a venv with `pip install mediapipe==0.10.14`); without it, in this interpreter
when `mediapipe` imports here. Optional, never a dependency.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
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


def follow_window(track_xy: np.ndarray, w: int, h: int, win: tuple[int, int]) -> np.ndarray:
    """Top-left corners (F, 2) of a win-sized window following a track (gaps held, smoothed)."""
    ok = np.isfinite(track_xy).all(-1)
    idx = np.flatnonzero(ok)
    centre = np.stack(
        [np.interp(np.arange(len(track_xy)), idx, track_xy[idx, k]) for k in (0, 1)], -1
    )
    kernel = np.ones(9) / 9.0
    padded = np.pad(centre, ((4, 4), (0, 0)), mode="edge")
    smooth = np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in (0, 1)], -1)
    top_left = smooth - np.array(win) / 2.0
    return np.clip(top_left, 0, [w - win[0], h - win[1]]).round().astype(int)


def loneliest_tracks(centres: np.ndarray, min_frames: int) -> list[int]:
    """The columns of the tracks (present >= min_frames), loneliest first: by the median over
    a track's frames of the distance to the nearest other person."""
    present = np.isfinite(centres).all(-1)  # (F, P)
    gaps = {}
    for p in np.flatnonzero(present.sum(0) >= min_frames):
        d = np.linalg.norm(centres[:, p, None] - centres, axis=-1)  # (F, P)
        d[:, p] = np.inf
        nearest = np.where(np.isfinite(d), d, np.inf).min(1)[present[:, p]]
        gaps[int(p)] = float(np.median(np.minimum(nearest, 1e4)))
    return sorted(gaps, key=lambda p: -gaps[p]) or [0]


def loneliest_track(centres: np.ndarray, min_frames: int) -> int:
    """The column of the track (present >= min_frames) farthest from everyone else."""
    return loneliest_tracks(centres, min_frames)[0]


def make_single_720p(src: Path, dst: Path, frames: int) -> Path:
    """One person's 720p clip: the source's loneliest long track (our detector at 960, every
    person), its frames only, followed by a 256x144 window scaled 5x."""
    return make_single_clips(src, dst.parent, frames, 1, stem=dst.stem)[0]


def make_single_clips(src: Path, out_dir: Path, frames: int, count: int, stem: str = "single"):
    """Up to `count` such clips, one per long track, loneliest first: [out_dir/stem_k.mp4]
    (the first is out_dir/stem.mp4)."""
    from detectors import detect_video
    from hgmamba_core.video import iter_frames

    res = detect_video(src, imgsz=960, person="all", max_frames=frames * 3, progress=False)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames where a track is absent
        centres = np.nanmean(res.poses.keypoints, axis=2)  # (F, P, 2)
    w, h = res.poses.size
    clips = []
    for k, p in enumerate(loneliest_tracks(centres, min(frames, len(centres)) // 2)[:count]):
        span = np.flatnonzero(np.isfinite(centres[:, p]).all(-1))
        first, last = int(span[0]), min(int(span[-1]) + 1, int(span[0]) + frames)
        corners = follow_window(centres[first:last, p], w, h, (256, 144))
        dst = out_dir / (f"{stem}.mp4" if k == 0 else f"{stem}_{k}.mp4")
        fourcc = cv2.VideoWriter_fourcc(*"mp4v")
        vw = cv2.VideoWriter(str(dst), fourcc, res.poses.fps, (1280, 720))
        for i, f in enumerate(iter_frames(src)):
            if i >= last:
                break
            if i >= first:
                x, y = corners[i - first]
                crop = f[y : y + 144, x : x + 256]
                vw.write(cv2.resize(crop, (1280, 720), interpolation=cv2.INTER_CUBIC))
        vw.release()
        clips.append(dst)
    return clips


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


def _fps(rep, with_render: bool) -> float:
    """End-to-end frames/s over the stages (the render's included or not)."""
    total = sum(st.seconds for name, st in rep.stages.items() if with_render or name != "render")
    return rep.frames / total


def print_run(rep, wall: float) -> None:
    """Per-stage seconds and frames/s; end to end with and without the render stage."""
    total = render = 0.0
    for name, st in rep.stages.items():
        total += st.seconds
        render += st.seconds if name == "render" else 0.0
        print(f"  {name:8s} {st.seconds:7.2f} s  {st.fps:8.1f} frames/s")
    if render:
        print(f"  {'no-render':8s} {total - render:7.2f} s  {rep.frames / (total - render):8.1f}"
              " frames/s end to end (the stages before the render)")  # fmt: skip
    print(f"  {'stages':8s} {total:7.2f} s  {rep.frames / total:8.1f} frames/s end to end")
    print(f"  {'wall':8s} {wall:7.2f} s  {rep.frames / wall:8.1f} frames/s incl. model loading")


def compare_overlap(clip: Path, rep, imgsz: int, rounds: int, mode: str = "track") -> None:
    """Front end and render, decoding inline vs on the prefetch thread, alternating."""
    from detectors import detect_video
    from hgmamba_core.export import read_pose3d
    from hgmamba_core.poses import Pose2DSequence
    from hgmamba_core.prefetch import prefetch
    from hgmamba_core.render import render_video
    from hgmamba_core.video import iter_frames

    times: dict[str, list[float]] = {}
    pose2d, pose3d = Pose2DSequence.load(rep.out_dir / "pose2d.npz"), read_pose3d(rep.out_dir)
    for _ in range(rounds):
        for depth in (0, 4):
            t0 = time.perf_counter()
            detect_video(clip, imgsz=imgsz, person="main", progress=False, prefetch_frames=depth,
                         backend="auto", detector_mode=mode)  # fmt: skip
            times.setdefault(f"front end, prefetch {depth}", []).append(time.perf_counter() - t0)
            if "render" in rep.stages:
                t0 = time.perf_counter()
                render_video(prefetch(iter_frames(clip), depth), pose2d, pose3d,
                             rep.out_dir / "overlap.mp4", progress=False)  # fmt: skip
                times.setdefault(f"render, prefetch {depth}", []).append(time.perf_counter() - t0)
    print(f"decode overlap ({rounds} rounds, alternating; median seconds, frames/s):")
    for name, ts in times.items():
        med = float(np.median(ts))
        print(
            f"  {name:22s} {med:7.2f} s  {rep.frames / med:7.1f} frames/s  ({', '.join(f'{t:.2f}' for t in ts)})"
        )
    for stage in ("front end", "render"):
        a, b = times.get(f"{stage}, prefetch 0"), times.get(f"{stage}, prefetch 4")
        if a and b:
            print(f"  {stage}: prefetch thread {np.median(a) / np.median(b):.2f}x the inline speed")


def run_mediapipe(clip: Path, python: str | None) -> dict | None:
    """MediaPipe Pose on the clip: in `python` as a child process, else here if it imports."""
    script = Path(__file__).with_name("mediapipe_pose.py")
    if python:
        r = subprocess.run([python, str(script), str(clip)], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"MediaPipe failed in {python}: {r.stderr.strip().splitlines()[-1:]}")
            return None
        return json.loads(r.stdout.strip().splitlines()[-1])
    if importlib.util.find_spec("mediapipe") is None:
        print("MediaPipe: not installed here (pass --mediapipe-python PATH to compare)")
        return None
    sys.path.insert(0, str(script.parent))
    import mediapipe_pose

    return mediapipe_pose.run(str(clip), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--variant", default="xs")
    ap.add_argument("--render", action="store_true", help="include the side-by-side video")
    ap.add_argument("--no-flip", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--clip", choices=("pad", "single"), default="pad")
    ap.add_argument("--overlap", action="store_true", help="decode thread on/off, alternating")
    ap.add_argument("--overlap-rounds", type=int, default=2)
    ap.add_argument("--mediapipe-python", default=None, help="interpreter that has mediapipe")
    ap.add_argument(
        "--detector-modes", nargs="+", default=["track"], choices=("full", "track"),
        help="run hgmamba lift once per mode, in this order (e.g. full track: both in one run)",
    )  # fmt: skip
    ap.add_argument("--no-mediapipe", action="store_true")
    ap.add_argument(
        "--skip-windows", action="store_true", help="skip the per-frame-window baseline"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the hgmamba command sets it

    with tempfile.TemporaryDirectory(prefix="hgmamba-bench-") as d:
        tmp = Path(d)
        if args.clip == "single":
            clip = make_single_720p(source_video(), tmp / "single720p.mp4", args.frames)
        else:
            clip = make_720p(source_video(), tmp / "clip720p.mp4", args.frames)
        ckpt, kind = checkpoint(tmp, args.variant)
        runs = []
        for mode in args.detector_modes:
            t0 = time.perf_counter()
            rep = run_lift(
                LiftOptions(
                    video=clip, checkpoint=ckpt, out=tmp / f"out_{mode}",
                    detector_imgsz=args.imgsz, render=args.render, flip=not args.no_flip,
                    device=args.device, progress=False, detector_mode=mode,
                )
            )  # fmt: skip
            wall = time.perf_counter() - t0
            print(f"hgmamba lift --detector-mode {mode}, {rep.frames} frames 1280x720 "
                  f"({args.clip} clip), HGMamba-{rep.variant} ({kind}), detector imgsz "
                  f"{args.imgsz}, flip {not args.no_flip}, torch threads {args.threads}, "
                  f"{rep.device}, {rep.persons} person(s)")  # fmt: skip
            print_run(rep, wall)
            runs.append((mode, rep))
        if len(runs) == 2:
            (m0, r0), (m1, r1) = runs
            print(f"  end to end, {m1} / {m0}: {_fps(r1, False) / _fps(r0, False):.2f}x without "
                  f"render" + (f", {_fps(r1, True) / _fps(r0, True):.2f}x with render"
                               if "render" in r1.stages else ""))  # fmt: skip
        if not args.no_mediapipe:
            mp_res = run_mediapipe(clip, args.mediapipe_python)
            if mp_res is not None:
                print(f"MediaPipe {mp_res['mediapipe']} ({mp_res['model']}, 3D world landmarks, "
                      f"decode included): {mp_res['fps']:.1f} frames/s, 3D on "
                      f"{mp_res['frames_with_3d']}/{mp_res['frames']} frames "
                      f"(set-up {mp_res['setup_s']:.2f} s)")  # fmt: skip
                for mode, r in runs:
                    print(f"  ours ({mode}) / MediaPipe: {_fps(r, False) / mp_res['fps']:.2f}x "
                          f"without render" + (f", {_fps(r, True) / mp_res['fps']:.2f}x with "
                          "render" if "render" in r.stages else ""))  # fmt: skip
        if args.overlap:
            compare_overlap(clip, rep, args.imgsz, args.overlap_rounds, runs[-1][0])
        if args.skip_windows:
            return
        lift_windows(rep, ckpt, args)


def lift_windows(rep, ckpt: Path, args) -> None:
    """Lift stage: ours vs per-frame windows, same model, same dense track."""
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
