"""Frames/s of render_video (the side-by-side mp4) per 3D backend, and where the time goes.

Inputs: a `hgmamba lift` result folder (`--result DIR --video CLIP`, e.g. the demo's: 8 people)
or, by default, one Human3.6M walker (../shared/data/h36m/h36m_mini.npz) over the frames of
../shared/media/vtest.avi (768x576). Input frames are decoded before any timing (decoding is
the pipeline's, not the renderer's). Every figure comes from one run, the backends taking turns
round by round, so their ratio is fair on a noisy machine. Per frame: the 2D panel (frame copy +
overlay), the 3D panel of each backend (with the per-frame limits render_video uses), the
H.264 encode of ready side-by-side frames, render_video end to end, and (with --result and
--video) render_video decoding the clip as `hgmamba lift` does.
Usage: python bench/render.py [--result DIR --video CLIP] [--frames 100] [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from hgmamba_core.export import read_pose3d
from hgmamba_core.poses import Pose2DSequence, Pose3DSequence
from hgmamba_core.render import (
    RENDER_BACKENDS,
    _panel_2d,
    floor_region,
    make_panel,
    panel_limits,
    render_video,
)
from hgmamba_core.render.video_writer import open_video_writer
from hgmamba_core.video import iter_frames

W, H = 768, 576
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
H36M = SHARED / "data" / "h36m" / "h36m_mini.npz"
VTEST = SHARED / "media" / "vtest.avi"


def read_frames(path: Path | None, n: int, size: tuple[int, int] | None) -> list[np.ndarray]:
    """The first n frames of a video (resized to `size` if given), grey frames if it is short."""
    frames = []
    if path is not None and path.exists():
        cap = cv2.VideoCapture(str(path))
        while len(frames) < n:
            ok, f = cap.read()
            if not ok:
                break
            frames.append(cv2.resize(f, size) if size and f.shape[1::-1] != size else f)
        cap.release()
    w, h = size or (frames[0].shape[1::-1] if frames else (W, H))
    while len(frames) < n:
        frames.append(np.full((h, w, 3), 90, np.uint8))
    return frames


def walker(n: int) -> tuple[Pose2DSequence, Pose3DSequence]:
    """One H36M walker (random poses without the data), 50 frames/s, in a W x H frame."""
    if H36M.exists():
        with np.load(H36M) as z:
            p3, p2 = z["S1/Walking 1"], z["S1/Walking 1.54138969"]
        reps = int(np.ceil(n / len(p3)))
        p3, p2 = np.concatenate([p3] * reps)[:n], np.concatenate([p2] * reps)[:n]
        p2 = p2 * np.array([W / 1000, H / 1002], dtype=np.float32)
    else:
        rng = np.random.default_rng(0)
        p3 = rng.normal(0, 0.3, (n, 17, 3)) + np.array([0, 0, 1.0])
        p2 = rng.uniform(100, 500, (n, 17, 2))
    pose2d = Pose2DSequence(p2[:, None], np.ones((n, 1, 17)), [0], 50.0, (W, H))
    return pose2d, Pose3DSequence(p3[:, None], [0], 50.0)


def from_result(d: Path, n: int) -> tuple[Pose2DSequence, Pose3DSequence]:
    pose2d, pose3d = Pose2DSequence.load(d / "pose2d.npz"), read_pose3d(d)
    n = min(n, pose3d.num_frames)
    pose2d = Pose2DSequence(pose2d.keypoints[:n], pose2d.scores[:n], pose2d.track_ids,
                            pose2d.fps, pose2d.size)  # fmt: skip
    return pose2d, Pose3DSequence(pose3d.joints[:n], pose3d.track_ids, pose3d.fps)


def time_2d(src, pose2d) -> tuple[float, list[np.ndarray]]:
    t0 = time.perf_counter()
    out = [_panel_2d(f, pose2d, i) for i, f in enumerate(src)]
    return time.perf_counter() - t0, out


def time_3d(backend: str, pose3d: Pose3DSequence, size: int) -> tuple[float, list[np.ndarray]]:
    j = pose3d.joints
    limits, region = panel_limits(j, pose3d.fps or 25.0), floor_region(j)
    t0 = time.perf_counter()
    panel = make_panel(backend, size, limits[0], track_ids=pose3d.track_ids, region=region)
    out = [panel.draw(j[i], None, limits[i]) for i in range(len(j))]
    panel.close()
    return time.perf_counter() - t0, out


def time_encode(left, right, path: Path, fps: float) -> float:
    t0 = time.perf_counter()
    with open_video_writer(path, fps) as w:
        for a, b in zip(left, right, strict=True):
            w.write(np.concatenate([a, b], axis=1))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--result", type=Path, help="a `hgmamba lift` output folder")
    ap.add_argument("--video", type=Path, help="its input video (default: vtest.avi)")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    if a.result is not None:
        pose2d, pose3d = from_result(a.result, a.frames)
        src = read_frames(a.video, pose3d.num_frames, tuple(pose2d.size))
        what = f"{a.result} ({pose3d.num_persons} persons) over {a.video or 'grey frames'}"
    else:
        pose2d, pose3d = walker(a.frames)
        src = read_frames(a.video or VTEST, a.frames, (W, H))
        what = f"one H36M walker over {a.video or VTEST.name}"
    video = a.video if a.video is not None and a.result is not None else None
    n, fps = pose3d.num_frames, float(pose3d.fps or 25.0)
    size = src[0].shape[0] - src[0].shape[0] % 2
    times: dict[str, list[float]] = {}

    def add(key: str, t: float) -> None:
        times.setdefault(key, []).append(t)

    def frames():
        yield from src

    with tempfile.TemporaryDirectory() as d:
        for b in RENDER_BACKENDS:  # warm-up (imports, fonts) outside the timing
            render_video(frames(), pose2d, pose3d, Path(d) / "w.mp4", progress=False,
                         frames=slice(3), backend=b)  # fmt: skip
        for r in range(a.rounds):
            t2d, left = time_2d(src, pose2d)
            add("2D panel", t2d)
            right = None
            for b in RENDER_BACKENDS if r % 2 == 0 else RENDER_BACKENDS[::-1]:
                t3d, right = time_3d(b, pose3d, size)
                add(f"3D panel {b}", t3d)
            add("H.264 encode", time_encode(left, right, Path(d) / "e.mp4", fps))
            for b in RENDER_BACKENDS if r % 2 == 0 else RENDER_BACKENDS[::-1]:
                t0 = time.perf_counter()
                render_video(frames(), pose2d, pose3d, Path(d) / "o.mp4", progress=False,
                             backend=b)  # fmt: skip
                add(f"render_video {b}", time.perf_counter() - t0)
            if video is not None:  # what `hgmamba lift` / `hgmamba render --video` run
                t0 = time.perf_counter()
                with contextlib.closing(iter_frames(video)) as it:
                    render_video(it, pose2d, pose3d, Path(d) / "v.mp4", progress=False)
                add("+ decoding the video", time.perf_counter() - t0)

    out_w = src[0].shape[1] + size
    print(f"{what}: {n} frames {src[0].shape[1]}x{src[0].shape[0]} -> {out_w}x{size}, "
          f"best of {a.rounds} rounds")  # fmt: skip
    for key, ts in times.items():
        t = min(ts)
        print(f"  {key:<24} {n / t:7.1f} frames/s  {1000 * t / n:6.2f} ms/frame")
    best = {k: min(v) for k, v in times.items()}
    for part in ("3D panel", "render_video"):
        ratio = best[f"{part} matplotlib"] / best[f"{part} opencv"]
        print(f"  {part}: opencv {ratio:.1f}x matplotlib's frames/s")


if __name__ == "__main__":
    main()
