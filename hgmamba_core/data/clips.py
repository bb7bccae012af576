"""PoseClip: one (sequence, camera) of 2D keypoints and camera-frame 3D, the unit every reader yields."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hgmamba_core.errors import HGMambaError
from hgmamba_core.skeleton import NUM_JOINTS


@dataclass
class PoseClip:
    """2D input and 3D target of one camera view of one sequence, H36M-17 joint order.

    keypoints (N, 17, 2) pixels in an image of `size` = (w, h); joints3d (N, 17, 3) metres in the
    camera frame (not root-relative: windows subtract the root, H36M joint 0, the pelvis).
    `valid` (N,) marks frames that count in evaluation (3DHP test sets); None means all.
    `scores` (N, 17) detector confidences; None means 1.0 (ground truth 2D, Stacked Hourglass).
    """

    name: str
    subject: str
    action: str
    keypoints: np.ndarray
    joints3d: np.ndarray
    size: tuple[int, int]
    valid: np.ndarray | None = None
    scores: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        self.joints3d = np.asarray(self.joints3d, dtype=np.float32)
        n = self.keypoints.shape[0]
        if self.keypoints.shape != (n, NUM_JOINTS, 2):
            raise HGMambaError(f"{self.name}: 2D must be (N, 17, 2), got {self.keypoints.shape}")
        if self.joints3d.shape != (n, NUM_JOINTS, 3):
            raise HGMambaError(
                f"{self.name}: 3D must be ({n}, 17, 3) to match the 2D, got {self.joints3d.shape}"
            )
        if self.valid is not None:
            self.valid = np.asarray(self.valid).reshape(-1).astype(bool)
            if self.valid.shape[0] != n:
                raise HGMambaError(f"{self.name}: {self.valid.shape[0]} valid flags for {n} frames")
        if self.scores is not None:
            self.scores = np.asarray(self.scores, dtype=np.float32)
        self.size = (int(self.size[0]), int(self.size[1]))

    @property
    def num_frames(self) -> int:
        return int(self.keypoints.shape[0])
