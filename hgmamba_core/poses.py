"""Typed results passed between pipeline stages: 2D tracks in, 3D trajectories out."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hgmamba_core.errors import HGMambaError
from hgmamba_core.fileio import atomic_path
from hgmamba_core.skeleton import NUM_JOINTS


def normalize_screen(xy: np.ndarray, w: float, h: float) -> np.ndarray:
    """Pixels -> [-1, 1] along x keeping the aspect ratio: x' = 2x/w - 1, y' = 2y/w - h/w."""
    xy = np.asarray(xy, dtype=np.float32)
    out = xy / np.float32(w) * 2.0
    out[..., 0] -= 1.0
    out[..., 1] -= np.float32(h) / np.float32(w)
    return out


def denormalize_screen(xy: np.ndarray, w: float, h: float) -> np.ndarray:
    """Inverse of normalize_screen."""
    xy = np.asarray(xy, dtype=np.float32).copy()
    xy[..., 0] += 1.0
    xy[..., 1] += np.float32(h) / np.float32(w)
    return xy * np.float32(w) / 2.0


def _check_timestamps(ts: np.ndarray | None, frames: int) -> np.ndarray | None:
    if ts is None:
        return None
    ts = np.asarray(ts, dtype=np.float64).reshape(-1)
    if ts.shape[0] != frames:
        raise HGMambaError(f"{ts.shape[0]} timestamps for {frames} frames")
    return ts


def frame_times(timestamps: np.ndarray | None, frames: int, fps: float) -> np.ndarray:
    """Seconds of each frame: the timestamps when known, else f / fps (NaN without a rate)."""
    if timestamps is not None:
        return np.asarray(timestamps, dtype=np.float64)
    rate = float(fps) if fps and np.isfinite(fps) and fps > 0 else np.nan
    return np.arange(frames, dtype=np.float64) / rate


@dataclass
class Pose2DSequence:
    """2D tracks of H36M-17 joints for F frames and P persons, in pixels.

    keypoints (F, P, 17, 2) and scores (F, P, 17) are NaN where a person/joint is missing.
    `size` is the (width, height) of the frames the pixels refer to (after any rotation).
    `timestamps` (F,) seconds from the first frame, when the source gave them (a variable
    frame rate video); None means frame f is at f / fps.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    track_ids: np.ndarray
    fps: float
    size: tuple[int, int]
    source: str = ""
    layout: str = "h36m"
    timestamps: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        self.scores = np.asarray(self.scores, dtype=np.float32)
        self.track_ids = np.asarray(self.track_ids, dtype=np.int64).reshape(-1)
        k, s = self.keypoints, self.scores
        if k.ndim != 4 or k.shape[2:] != (NUM_JOINTS, 2):
            raise HGMambaError(f"2D keypoints must be (frames, persons, 17, 2), got {k.shape}")
        if s.shape != k.shape[:3]:
            raise HGMambaError(f"2D scores must be {k.shape[:3]}, got {s.shape}")
        if self.track_ids.shape[0] != k.shape[1]:
            raise HGMambaError(f"{k.shape[1]} persons but {self.track_ids.shape[0]} track ids")
        self.size = (int(self.size[0]), int(self.size[1]))
        self.timestamps = _check_timestamps(self.timestamps, k.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def num_persons(self) -> int:
        return int(self.keypoints.shape[1])

    def frame_times(self) -> np.ndarray:
        """(F,) seconds of each frame: the stored timestamps, else f / fps."""
        return frame_times(self.timestamps, self.num_frames, self.fps)

    def normalized(self) -> np.ndarray:
        """Keypoints in aspect-preserving screen coordinates (see normalize_screen)."""
        return normalize_screen(self.keypoints, *self.size)

    def select(self, persons: list[int] | np.ndarray) -> Pose2DSequence:
        """A copy holding only the given person columns (indices, not track ids)."""
        idx = np.asarray(persons, dtype=np.int64)
        return Pose2DSequence(
            self.keypoints[:, idx], self.scores[:, idx], self.track_ids[idx],
            self.fps, self.size, self.source, self.layout, self.timestamps,
        )  # fmt: skip

    def save(self, path: str | os.PathLike) -> None:
        """Write one npz (atomically) with the fields named in INTERFACE.md."""
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(
                f, keypoints=self.keypoints, scores=self.scores, track_ids=self.track_ids,
                fps=np.float64(self.fps), size=np.asarray(self.size, dtype=np.int64),
                source=np.str_(self.source), layout=np.str_(self.layout),
                timestamps=self.frame_times(),
            )  # fmt: skip

    @classmethod
    def load(cls, path: str | os.PathLike) -> Pose2DSequence:
        p = Path(path)
        try:
            with np.load(p, allow_pickle=False) as z:
                return cls(
                    keypoints=z["keypoints"], scores=z["scores"], track_ids=z["track_ids"],
                    fps=float(z["fps"]), size=tuple(int(v) for v in z["size"]),
                    source=str(z["source"]) if "source" in z else "",
                    layout=str(z["layout"]) if "layout" in z else "h36m",
                    timestamps=z.get("timestamps"),
                )  # fmt: skip
        except (OSError, ValueError, KeyError) as e:
            raise HGMambaError(f"cannot read 2D poses from {p}: {e}") from None


@dataclass
class Pose3DSequence:
    """3D joints (F, P, 17, 3) in metres in the world frame (z up, floor at z = 0), NaN if missing."""

    joints: np.ndarray
    track_ids: np.ndarray
    fps: float
    variant: str = ""
    checkpoint: str = ""
    axes: str = "x right, y forward (away from the camera), z up; metres; floor at z=0"
    meta: dict = field(default_factory=dict)
    timestamps: np.ndarray | None = None  # (F,) seconds; None: frame f is at f / fps
    input_info: dict = field(default_factory=dict)  # frames_decoded, frames_in_header, ...

    def __post_init__(self) -> None:
        self.joints = np.asarray(self.joints, dtype=np.float32)
        self.timestamps = _check_timestamps(self.timestamps, self.joints.shape[0])
        self.track_ids = np.asarray(self.track_ids, dtype=np.int64).reshape(-1)
        j = self.joints
        if j.ndim != 4 or j.shape[2:] != (NUM_JOINTS, 3):
            raise HGMambaError(f"3D joints must be (frames, persons, 17, 3), got {j.shape}")

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])

    def frame_times(self) -> np.ndarray:
        """(F,) seconds of each frame: the stored timestamps, else f / fps."""
        return frame_times(self.timestamps, self.num_frames, self.fps)

    @property
    def num_persons(self) -> int:
        return int(self.joints.shape[1])
