"""The detector contract: one BGR frame in, COCO-17 people (pixels + confidences) out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

NUM_COCO_JOINTS = 17


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """Areas of (N, 4) x1 y1 x2 y2 boxes, in their dtype (a flipped box counts 0)."""
    wh = np.clip(boxes[:, 2:] - boxes[:, :2], 0.0, None)
    return wh[:, 0] * wh[:, 1]


@dataclass
class FrameDetections:
    """People found in one frame, in the frame's pixels.

    keypoints (N, 17, 2) COCO-17 order, scores (N, 17) in [0, 1], boxes (N, 4) x1 y1 x2 y2,
    box_scores (N,), track_ids (N,) int (-1 when the detector does not track).
    """

    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    box_scores: np.ndarray
    track_ids: np.ndarray

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32).reshape(
            -1, NUM_COCO_JOINTS, 2
        )
        n = self.keypoints.shape[0]
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(n, NUM_COCO_JOINTS)
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(n, 4)
        self.box_scores = np.asarray(self.box_scores, dtype=np.float32).reshape(n)
        self.track_ids = np.asarray(self.track_ids, dtype=np.int64).reshape(n)

    @classmethod
    def empty(cls) -> FrameDetections:
        z = np.zeros((0,), dtype=np.float32)
        return cls(z, z, z, z, np.zeros((0,), dtype=np.int64))

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def box_areas(self) -> np.ndarray:
        return box_areas(self.boxes)


@runtime_checkable
class Pose2DDetector(Protocol):
    """A 2D pose detector used frame by frame on a stream.

    `detect` finds people in a single image; `track` does the same on the next frame of a
    video and keeps identities across calls (track_ids >= 0); `reset` starts a new video.
    """

    name: str

    def detect(self, frame: np.ndarray) -> FrameDetections: ...

    def track(self, frame: np.ndarray) -> FrameDetections: ...

    def reset(self) -> None: ...
