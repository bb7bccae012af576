"""MediaPipe Pose (BlazePose, 3D world landmarks, one person) over a video: frames/s as JSON.

    /work/mp_venv/bin/python bench/mediapipe_pose.py CLIP.mp4 [--complexity 1]

Runs in whatever interpreter has `mediapipe` (bench/lift.py starts it with --mediapipe-python,
a separate venv, so MediaPipe's numpy/protobuf pins never touch ours); needs only mediapipe,
its opencv and numpy, nothing of hgmamba. Decoding (OpenCV) is included in the time, as our
end-to-end figure includes PyAV's. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import time


def run(path: str, complexity: int) -> dict:
    """Frames, seconds, frames with 3D world landmarks; model set-up timed separately."""
    import cv2
    import mediapipe as mp

    t0 = time.perf_counter()
    pose = mp.solutions.pose.Pose(
        static_image_mode=False, model_complexity=complexity, enable_segmentation=False
    )
    setup = time.perf_counter() - t0
    cap = cv2.VideoCapture(path)
    frames = found = 0
    t0 = time.perf_counter()
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        res = pose.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        frames += 1
        found += res.pose_world_landmarks is not None
    seconds = time.perf_counter() - t0
    cap.release()
    pose.close()
    return {
        "frames": frames,
        "seconds": seconds,
        "setup_s": setup,
        "frames_with_3d": found,
        "fps": frames / seconds if seconds > 0 else float("nan"),
        "model": f"pose_landmark {['lite', 'full', 'heavy'][complexity]}",
        "mediapipe": mp.__version__,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("video")
    ap.add_argument("--complexity", type=int, default=1, choices=(0, 1, 2), help="1: full")
    a = ap.parse_args()
    print(json.dumps(run(a.video, a.complexity)))


if __name__ == "__main__":
    main()
