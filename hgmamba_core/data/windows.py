"""Model inputs and targets, training windows and test-time tiling.

Units and conventions (every dataset, after its reader maps joints to H36M-17):
- input (T, 17, 3): x, y from `poses.normalize_screen` (x' = 2x/w - 1, y' = 2y/w - h/w) and a
  confidence channel (1.0 for ground-truth 2D and for Stacked Hourglass, which has no scores);
- target (T, 17, 3): camera-frame 3D in METRES, relative to the root joint (H36M-17 joint 0, the
  pelvis; for MPI-INF-3DHP that is its joint 14, pelvis, after `skeleton.mpi3dhp_to_h36m`).
- flip augmentation: swap left/right joints (`skeleton.flip_permutation`) and negate x, in the
  2D input and the 3D target alike (x' = -x mirrors the image about its centre line).

A window is T frames taken every `frame_stride` frames (1 = the native frame rate) from one clip;
indices past either end repeat the edge frame. Training windows start every `window_stride`
frames from a random per-clip phase that changes each epoch, so over epochs every start is seen.
At test time each clip (and, for frame_stride K > 1, each of its K phases) is tiled by
non-overlapping windows, the last one edge-padded, so every frame is predicted exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from hgmamba_core.data.clips import PoseClip
from hgmamba_core.errors import HGMambaError
from hgmamba_core.poses import normalize_screen
from hgmamba_core.skeleton import H36M_ROOT, flip_permutation


def clip_inputs(clip: PoseClip) -> np.ndarray:
    """(N, 17, 3) float32: normalized x, y and confidence."""
    xy = normalize_screen(clip.keypoints, *clip.size)
    conf = (
        np.ones(xy.shape[:-1] + (1,), np.float32) if clip.scores is None else clip.scores[..., None]
    )
    return np.concatenate([xy, conf.astype(np.float32)], axis=-1)


def clip_targets(clip: PoseClip) -> np.ndarray:
    """(N, 17, 3) float32: camera-frame 3D in metres, root (joint 0) subtracted."""
    j = clip.joints3d
    return (j - j[:, H36M_ROOT : H36M_ROOT + 1]).astype(np.float32)


def flip_poses(x: np.ndarray) -> np.ndarray:
    """Mirror (..., 17, C) poses whose channel 0 is x: swap left/right joints, negate x."""
    out = np.array(x[..., flip_permutation(), :], copy=True)
    out[..., 0] *= -1.0
    return out


def window_frames(
    start: np.ndarray, length: int, n_frames: np.ndarray, frame_stride: int = 1
) -> np.ndarray:
    """Frame indices (..., T) of windows starting at `start`, edge-clamped to [0, n_frames - 1]."""
    start = np.asarray(start, dtype=np.int64)[..., None]
    n = np.asarray(n_frames, dtype=np.int64)[..., None]
    idx = start + frame_stride * np.arange(length, dtype=np.int64)
    return np.clip(idx, 0, n - 1)


def tile_clip(n_frames: int, length: int, frame_stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Test-time tiling of one clip: (indices (W, T), owned (W, T) bool).

    Window positions with owned=True are the ones whose prediction is kept; each frame
    0..n_frames-1 is owned exactly once. For frame_stride K, phase p covers frames p, p+K, ...
    """
    if n_frames < 1 or length < 1 or frame_stride < 1:
        raise HGMambaError(f"cannot tile {n_frames} frames with T={length}, stride={frame_stride}")
    wins, owned = [], []
    for phase in range(min(frame_stride, n_frames)):
        frames = np.arange(phase, n_frames, frame_stride)
        n_win = -(-len(frames) // length)
        pos = np.arange(n_win * length)
        own = pos < len(frames)
        wins.append(frames[np.minimum(pos, len(frames) - 1)].reshape(n_win, length))
        owned.append(own.reshape(n_win, length))
    return np.concatenate(wins), np.concatenate(owned)


@dataclass
class ClipStore:
    """All clips concatenated into two flat arrays, so a batch is one fancy-index gather.

    inputs/targets (M, 17, 3) float32; clip c owns rows offsets[c]:offsets[c+1].
    """

    inputs: np.ndarray
    targets: np.ndarray
    offsets: np.ndarray
    names: list[str]
    actions: list[str]
    subjects: list[str]
    valid: np.ndarray  # (M,) bool: frames that count in evaluation

    @classmethod
    def from_clips(cls, clips: Sequence[PoseClip]) -> ClipStore:
        if not clips:
            raise HGMambaError("no clips to build windows from")
        lengths = np.array([c.num_frames for c in clips], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        total = int(offsets[-1])
        inputs = np.empty((total, 17, 3), np.float32)
        targets = np.empty((total, 17, 3), np.float32)
        valid = np.ones(total, bool)
        for c, clip in enumerate(clips):
            a, b = offsets[c], offsets[c + 1]
            inputs[a:b] = clip_inputs(clip)
            targets[a:b] = clip_targets(clip)
            if clip.valid is not None:
                valid[a:b] = clip.valid
        return cls(
            inputs=inputs, targets=targets, offsets=offsets,
            names=[c.name for c in clips], actions=[c.action for c in clips],
            subjects=[c.subject for c in clips], valid=valid,
        )  # fmt: skip

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def num_clips(self) -> int:
        return len(self.names)

    def clip_slice(self, c: int) -> slice:
        return slice(int(self.offsets[c]), int(self.offsets[c + 1]))


@dataclass(frozen=True)
class Batch:
    """One training batch: inputs and targets (B, T, 17, 3) float32 numpy arrays."""

    inputs: np.ndarray
    targets: np.ndarray


class TrainWindows:
    """Shuffled, optionally flipped training windows; deterministic given (seed, epoch).

    Each epoch has the same number of windows: ceil(N / window_stride) per clip, starting at
    phase + i * window_stride (phase random per clip and epoch; starts past the end wrap to the
    beginning). Batches are full (the last partial batch of an epoch is dropped).
    """

    def __init__(
        self,
        store: ClipStore,
        length: int,
        window_stride: int,
        frame_stride: int = 1,
        flip: bool = True,
    ) -> None:
        if length < 1 or window_stride < 1 or frame_stride < 1:
            raise HGMambaError("window length and strides must be >= 1")
        self.store = store
        self.length = int(length)
        self.window_stride = int(window_stride)
        self.frame_stride = int(frame_stride)
        self.flip = flip
        self._per_clip = -(-store.lengths // self.window_stride)
        self.num_windows = int(self._per_clip.sum())

    def steps_per_epoch(self, batch_size: int) -> int:
        return self.num_windows // batch_size

    def _epoch_plan(self, epoch: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng([int(seed), int(epoch)])
        lengths = self.store.lengths
        clip_of = np.repeat(np.arange(len(lengths)), self._per_clip)
        first = np.concatenate([[0], np.cumsum(self._per_clip)[:-1]])
        i = np.arange(self.num_windows) - np.repeat(first, self._per_clip)
        phase = rng.integers(0, self.window_stride, size=len(lengths))
        start = (phase[clip_of] + i * self.window_stride) % lengths[clip_of]
        order = rng.permutation(self.num_windows)
        flips = (
            rng.random(self.num_windows) < 0.5 if self.flip else np.zeros(self.num_windows, bool)
        )
        return clip_of[order], start[order], flips

    def batches(
        self, epoch: int, seed: int, batch_size: int, start_step: int = 0
    ) -> Iterator[Batch]:
        """Batches of one epoch, from `start_step` on (for resuming mid-epoch)."""
        clip_of, start, flips = self._epoch_plan(epoch, seed)
        st = self.store
        for step in range(start_step, self.steps_per_epoch(batch_size)):
            sel = slice(step * batch_size, (step + 1) * batch_size)
            c = clip_of[sel]
            rows = st.offsets[c][:, None] + window_frames(
                start[sel], self.length, st.lengths[c], self.frame_stride
            )
            x = st.inputs[rows]
            y = st.targets[rows]
            f = flips[sel]
            if f.any():
                x[f] = flip_poses(x[f])
                y[f] = flip_poses(y[f])
            yield Batch(x, y)
