"""MediaPipe Pose (BlazePose, 3D world landmarks, one person) over a video: frames/s as JSON.

    /work/mp_venv/bin/python bench/mediapipe_pose.py CLIP.mp4 [--complexity 1] [--save F.npz]

Runs in whatever interpreter has `mediapipe` (bench/lift.py starts it with --mediapipe-python,
a separate venv, so MediaPipe's numpy/protobuf pins never touch ours); needs only mediapipe,
its opencv and numpy, nothing of hgmamba. Decoding (OpenCV) is included in the time, as our
end-to-end figure includes PyAV's. Prints one JSON object on stdout. --save writes the 3D world
landmarks (frames, 33, 3) metres, the image landmarks (frames, 33, 2) pixels and visibilities
(frames, 33), NaN where no pose was found (bench/quality.py compares them with ours).
"""

from __future__ import annotations

import argparse
import json
import time


def run(path: str, complexity: int, save: str | None = None) -> dict:
    """Frames, seconds, frames with 3D world landmarks; model set-up timed separately."""
    import cv2
    import mediapipe as mp
    import numpy as np

    t0 = time.perf_counter()
    pose = mp.solutions.pose.Pose(
        static_image_mode=False, model_complexity=complexity, enable_segmentation=False
    )
    setup = time.perf_counter() - t0
    cap = cv2.VideoCapture(path)
    frames = found = 0
    world, image, vis = [], [], []
    t0 = time.perf_counter()
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        res = pose.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        frames += 1
        found += res.pose_world_landmarks is not None
        if save:
            h, w = bgr.shape[:2]
            world.append(_landmarks(res.pose_world_landmarks, (1.0, 1.0, 1.0)))
            image.append(_landmarks(res.pose_landmarks, (w, h, 0.0))[:, :2])
            vis.append(_landmarks(res.pose_landmarks, (1.0, 1.0, 1.0), "visibility")[:, 0])
    seconds = time.perf_counter() - t0
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    pose.close()
    if save:
        np.savez(save, world=np.stack(world), image=np.stack(image), visibility=np.stack(vis),
                 fps=fps)  # fmt: skip
    return {
        "frames": frames,
        "seconds": seconds,
        "setup_s": setup,
        "frames_with_3d": found,
        "fps": frames / seconds if seconds > 0 else float("nan"),
        "model": f"pose_landmark {['lite', 'full', 'heavy'][complexity]}",
        "mediapipe": mp.__version__,
    }


def _landmarks(lms, scale: tuple[float, float, float], attr: str = ""):
    """(33, 3) float32 of a landmark list (x, y, z times scale, or one attribute), NaN if None."""
    import numpy as np

    if lms is None:
        return np.full((33, 3), np.nan, np.float32)
    if attr:
        return np.array([[getattr(p, attr)] * 3 for p in lms.landmark], np.float32)
    return np.array([[p.x, p.y, p.z] for p in lms.landmark], np.float32) * np.float32(scale)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("video")
    ap.add_argument("--complexity", type=int, default=1, choices=(0, 1, 2), help="1: full")
    ap.add_argument("--save", default=None, help="write the landmarks to this .npz")
    a = ap.parse_args()
    print(json.dumps(run(a.video, a.complexity, a.save)))


if __name__ == "__main__":
    main()
