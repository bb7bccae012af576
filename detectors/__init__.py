"""2D front end: video or keypoint file -> clean H36M-17 2D tracks (Pose2DSequence).

Public entry points: detect_video, load_keypoints (front_end.py). Ultralytics is imported
only when a detector is actually built (detectors.yolo).
"""

from detectors.base import FrameDetections, Pose2DDetector
from detectors.front_end import (
    FrontEndResult,
    Segment,
    StageTiming,
    detect_video,
    finish_tracks,
    load_keypoints,
    segments_from_poses,
)

__all__ = [
    "FrameDetections",
    "FrontEndResult",
    "Pose2DDetector",
    "Segment",
    "StageTiming",
    "detect_video",
    "finish_tracks",
    "load_keypoints",
    "segments_from_poses",
]
