"""A fixed wild-camera test set: S9/S11 motion through seeded virtual cameras with detector-like 2D.

H36M's test split only has the four near-horizontal studio cameras. This builds, from the test
subjects' world 3D, windows seen by virtual cameras stratified by pitch (equal numbers per
pitch bucket), with the training-time detector noise and the COCO front end's derived joints,
so lifters can be compared on views like phone / CCTV footage. Everything is a pure function of
the seed: two runs (or two branches) score the same windows.

Public API (bench/wild.py and the world-frame benchmark use it):

- `PITCH_BUCKETS`: ((0, 15), (15, 30), (30, 45), (45, 60)) degrees below the horizon.
- `build_wild_set(data_dir, per_bucket=32, ...) -> WildSet`: the windows, their cameras and
  pitch, world 3D, pixels, confidences, lifter inputs and root-relative camera-frame targets.
- `stress_inputs(ws, share=0.2, seed=0)`: the same windows with `share` of the joints
  displaced and given confidence 0 (does the lifter read the confidence?).
- `score_windows(pred, target)`: P1 / P2 in mm of root-relative predictions (metres).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hgmamba_core import metrics
from hgmamba_core.camera import Camera
from hgmamba_core.data.augment import DetectorNoise, detector_like_2d, displace_joints
from hgmamba_core.data.h36m import TEST_SUBJECTS
from hgmamba_core.data.virtual_camera import (
    CameraRanges,
    project_view,
    root_relative,
    sample_camera,
)
from hgmamba_core.data.wild import H36M_FPS, load_world_store, screen_input
from hgmamba_core.data.windows import window_frames
from hgmamba_core.skeleton import synthesize_derived_joints

PITCH_BUCKETS: tuple[tuple[float, float], ...] = ((0, 15), (15, 30), (30, 45), (45, 60))


@dataclass
class WildSet:
    """W windows of T frames. inputs (W, T, 17, 3) lifter input (normalize_screen x, y, conf);
    targets (W, T, 17, 3) root-relative camera-frame metres; world (W, T, 17, 3) metres z up;
    keypoints (W, T, 17, 2) px; confidence (W, T, 17); pitch_deg (W,) line-of-sight pitch;
    bucket (W,) index into PITCH_BUCKETS; cameras (W,); sequences (W,) names."""

    inputs: np.ndarray
    targets: np.ndarray
    world: np.ndarray
    keypoints: np.ndarray
    confidence: np.ndarray
    pitch_deg: np.ndarray
    bucket: np.ndarray
    cameras: list[Camera] = field(default_factory=list)
    sequences: list[str] = field(default_factory=list)
    buckets: tuple[tuple[float, float], ...] = PITCH_BUCKETS


def build_wild_set(
    data_dir: str | os.PathLike,
    per_bucket: int = 32,
    subjects: Sequence[str] = TEST_SUBJECTS,
    length: int = 27,
    frame_stride: int = 2,
    seed: int = 0,
    buckets: tuple[tuple[float, float], ...] = PITCH_BUCKETS,
    noise: DetectorNoise | None = DetectorNoise(),
    ranges: CameraRanges = CameraRanges(),
) -> WildSet:
    """`per_bucket` windows per pitch bucket from `subjects`' world 3D (seeded).

    Window starts are spread over all frames of all sequences; each window gets one camera with
    pitch uniform in its bucket (other ranges from `ranges`), detector-like 2D (`noise`; None =
    exact projections) and the front end's derived joints.
    """
    store = load_world_store(data_dir, subjects, with_sh=False)
    rng = np.random.default_rng([int(seed), 77])
    n = per_bucket * len(buckets)
    total = int(store.offsets[-1])
    flat = np.sort(rng.choice(total, size=n, replace=False))
    seq = np.searchsorted(store.offsets, flat, side="right") - 1
    order = rng.permutation(n)
    out: dict[str, list] = {k: [] for k in ("x", "y", "w", "kp", "c", "p", "b", "cam", "s")}
    fps = H36M_FPS / frame_stride
    for i, k in enumerate(order):
        s = int(seq[k])
        b = i % len(buckets)
        start = int(flat[k] - store.offsets[s])
        frames = window_frames(start, length, store.lengths[s], frame_stride)
        world = store.world[store.offsets[s] + frames].astype(np.float64)
        r = CameraRanges(**{**ranges.__dict__, "pitch_deg": tuple(map(float, buckets[b]))})
        vc = sample_camera(world, rng, r)
        view = project_view(world, vc.camera)
        kp, conf = view.keypoints, np.ones(view.keypoints.shape[:-1], np.float32)
        if noise is not None:
            noisy = detector_like_2d(kp, rng, noise, fps)
            kp, conf = noisy.keypoints, noisy.confidence
        kp, conf = synthesize_derived_joints(kp, conf)
        out["x"].append(screen_input(kp, conf, view.size))
        out["y"].append(root_relative(view.joints_cam))
        out["w"].append(world.astype(np.float32))
        out["kp"].append(kp)
        out["c"].append(conf)
        out["p"].append(vc.pitch_deg)
        out["b"].append(b)
        out["cam"].append(vc.camera)
        out["s"].append(store.names[s])
    return WildSet(
        inputs=np.stack(out["x"]), targets=np.stack(out["y"]), world=np.stack(out["w"]),
        keypoints=np.stack(out["kp"]), confidence=np.stack(out["c"]),
        pitch_deg=np.array(out["p"]), bucket=np.array(out["b"]), cameras=out["cam"],
        sequences=out["s"], buckets=buckets,
    )  # fmt: skip


def stress_inputs(ws: WildSet, share: float = 0.2, seed: int = 0) -> np.ndarray:
    """Inputs of `ws` with `share` of all joints moved 0.2-0.6 person sizes and confidence 0."""
    rng = np.random.default_rng([int(seed), 78])
    xs = []
    for w in range(len(ws.inputs)):
        kp, conf = displace_joints(ws.keypoints[w], ws.confidence[w], rng, share)
        xs.append(screen_input(kp, conf, ws.cameras[w].res))
    return np.stack(xs)


def score_windows(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """P1 (MPJPE) and P2 (P-MPJPE) in mm of (..., T, 17, 3) root-relative metres."""
    p = np.asarray(pred, np.float64).reshape(-1, 17, 3) * 1000.0
    g = np.asarray(target, np.float64).reshape(-1, 17, 3) * 1000.0
    p = p - p[:, :1]
    return {"p1": float(metrics.mpjpe(p, g)), "p2": float(metrics.p_mpjpe(p, g))}
