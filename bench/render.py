"""Frames/s of render_video at 768x576 input (output 1344x576: input | 3D panel), per part.

Input frames: the first N frames of ../shared/media/vtest.avi (768x576, decoded before timing;
real content matters for the encoder), else flat grey frames. Motion: Human3.6M
(../shared/data/h36m/h36m_mini.npz), else random. Prints, from one run: end-to-end frames/s, and the share of time in the 3D panel
(Matplotlib draw + buffer read), the 2D overlay and H.264 encoding.
Usage: python bench/render.py [--frames 300]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from hgmamba_core.poses import Pose2DSequence, Pose3DSequence
from hgmamba_core.render import Skeleton3DPanel, axis_limits, draw_pose2d, render_video
from hgmamba_core.video_writer import open_video_writer

W, H = 768, 576
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
H36M = SHARED / "data" / "h36m" / "h36m_mini.npz"
VTEST = SHARED / "media" / "vtest.avi"


def input_frames(n: int) -> list[np.ndarray]:
    frames = []
    if VTEST.exists():
        cap = cv2.VideoCapture(str(VTEST))
        while len(frames) < n:
            ok, f = cap.read()
            if not ok:
                break
            frames.append(cv2.resize(f, (W, H)) if f.shape[:2] != (H, W) else f)
        cap.release()
    while len(frames) < n:
        frames.append(np.full((H, W, 3), 90, np.uint8))
    return frames


def motion(n: int) -> tuple[np.ndarray, np.ndarray]:
    if H36M.exists():
        with np.load(H36M) as z:
            p3, p2 = z["S1/Walking 1"], z["S1/Walking 1.54138969"]
        reps = int(np.ceil(n / len(p3)))
        p3, p2 = np.concatenate([p3] * reps)[:n], np.concatenate([p2] * reps)[:n]
        return p3, p2 * np.array([W / 1000, H / 1002], dtype=np.float32)
    rng = np.random.default_rng(0)
    p3 = rng.normal(0, 0.3, (n, 17, 3)) + np.array([0, 0, 1.0])
    return p3, rng.uniform(100, 500, (n, 17, 2))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=300)
    a = ap.parse_args()
    n = a.frames
    p3, p2 = motion(n)
    pose2d = Pose2DSequence(p2[:, None], np.ones((n, 1, 17)), [0], 50.0, (W, H))
    pose3d = Pose3DSequence(p3[:, None], [0], 50.0)
    src = input_frames(n)

    def frames():
        for f in src:
            yield f.copy()

    with tempfile.TemporaryDirectory() as d:
        # Warm-up (imports, fonts) outside the timing.
        render_video(frames(), pose2d, pose3d, Path(d) / "w.mp4", progress=False, frames=slice(5))
        t0 = time.perf_counter()
        render_video(frames(), pose2d, pose3d, Path(d) / "o.mp4", progress=False)
        total = time.perf_counter() - t0

        panel = Skeleton3DPanel(H, axis_limits(pose3d.joints), track_ids=[0])
        t0 = time.perf_counter()
        right = None
        for i in range(n):
            right = panel.draw(pose3d.joints[i])
        t3d = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i, f in enumerate(frames()):
            draw_pose2d(f, pose2d.keypoints[i], pose2d.scores[i])
        t2d = time.perf_counter() - t0
        t0 = time.perf_counter()
        with open_video_writer(Path(d) / "e.mp4", 50.0) as w:
            for f in src:
                w.write(np.concatenate([f, right], axis=1))
        tenc = time.perf_counter() - t0
    print(
        f"input {'vtest.avi' if VTEST.exists() else 'grey'}: render_video {W}x{H} -> {W + H}x{H}, {n} frames: {n / total:.1f} frames/s end to end"
    )
    # Each part timed alone, as a ratio to the end-to-end time. They need not add up to 100%:
    # libx264 encodes on its own threads, overlapping the drawing.
    print(f"  3D panel alone {n / t3d:.1f} f/s = {t3d / total:.2f} x end-to-end time")
    print(f"  2D overlay alone {n / t2d:.1f} f/s = {t2d / total:.2f} x")
    print(f"  H.264 encode alone {n / tenc:.1f} f/s = {tenc / total:.2f} x")


if __name__ == "__main__":
    main()
