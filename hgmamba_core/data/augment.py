"""Detector-like 2D: make clean projected keypoints look like what the front end hands the lifter.

Ground-truth 2D is exact and always confident; YOLO-Pose keypoints after detectors/cleaning.py
jitter (correlated over frames), sometimes jump, swap left and right, go missing (and are then
filled by the front end's own `fill_segment`), and carry scores of 0.3-1 that drop where they
are wrong. A lifter trained only on clean 2D has never seen any of that.

Public API (kept stable; the world-frame benchmark imports it):

- `DetectorNoise` (frozen dataclass): noise levels, all relative to the person's size.
- `detector_like_2d(keypoints, rng, noise=DetectorNoise(), fps=25.0) -> Noisy2D`: keypoints
  (T, 17, 2) px of one window -> noisy keypoints (T, 17, 2) px (finite everywhere) and
  confidences (T, 17) in [0, 1].
- `confidence_from_error(rel_error, top=1.0)`: the confidence model, strictly decreasing in
  the error (in units of the person's size).
- `person_size(keypoints)`: the window's person size in px (the scale every noise level uses).
- `displace_joints(keypoints, conf, rng, share, size)`: the confidence stress test: `share` of
  the joints moved far away and given confidence 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hgmamba_core.skeleton import H36M_LEFT, H36M_RIGHT

# Per-joint noise multipliers (H36M-17): extremities jitter most in detector output.
_JOINT_NOISE = np.array(
    [1.0, 1.0, 1.2, 1.5, 1.0, 1.2, 1.5, 1.0, 0.8, 0.8, 1.0, 0.9, 1.2, 1.6, 0.9, 1.2, 1.6],
    np.float64,
)
# Left/right joint pairs that a detector confuses together: legs, arms.
_SWAP_GROUPS: tuple[tuple[tuple[int, int], ...], ...] = (
    tuple(zip(H36M_LEFT[:3], H36M_RIGHT[:3], strict=True)),
    tuple(zip(H36M_LEFT[3:], H36M_RIGHT[3:], strict=True)),
)


@dataclass(frozen=True)
class DetectorNoise:
    """Noise levels of detector-like 2D; lengths are fractions of `person_size`.

    sigma: per-window jitter std drawn uniformly from this range (before the per-joint factor);
    tau_s: correlation time of the jitter (AR(1)); outlier_p: per joint and frame chance of a
    jump of outlier_size, lasting 1-4 frames; swap_p: per-window chance of a left/right swap of
    the legs or arms for a few frames; drop_p: per joint and frame chance that it goes missing
    (runs of 1-6 frames), filled like the front end fills gaps; conf_top: per-window best score.
    """

    sigma: tuple[float, float] = (0.005, 0.04)
    tau_s: float = 0.15
    outlier_p: float = 0.004
    outlier_size: tuple[float, float] = (0.1, 0.4)
    swap_p: float = 0.1
    drop_p: float = 0.01
    conf_top: tuple[float, float] = (0.8, 1.0)


@dataclass(frozen=True)
class Noisy2D:
    """Detector-like keypoints (T, 17, 2) px, confidences (T, 17), and the dropped mask (T, 17)."""

    keypoints: np.ndarray
    confidence: np.ndarray
    dropped: np.ndarray


def person_size(keypoints: np.ndarray) -> float:
    """Median over frames of the larger side of the keypoints' box (px): the scale of the noise."""
    kp = np.asarray(keypoints, np.float64)
    ext = np.nanmax(kp, axis=-2) - np.nanmin(kp, axis=-2)  # (T, 2)
    return float(max(np.nanmedian(ext.max(-1)), 1.0))


def confidence_from_error(rel_error: np.ndarray, top: float | np.ndarray = 1.0) -> np.ndarray:
    """Confidence of a keypoint `rel_error` person-sizes away from the truth: top * exp(-e / 0.05).

    Strictly decreasing: 0 error keeps `top`, 2.5 % of the person's size (a typical YOLO
    error) gives 0.61 top, 10 % gives 0.14 top; so the lifter learns to trust the score the way
    a detector's score tracks its error.
    """
    e = np.maximum(np.asarray(rel_error, np.float64), 0.0)
    return (np.asarray(top, np.float64) * np.exp(-e / 0.05)).astype(np.float32)


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], a: float) -> np.ndarray:
    """Unit-variance AR(1) noise along axis 0 (coefficient a)."""
    e = rng.standard_normal(shape)
    out = np.empty(shape)
    out[0] = e[0]
    s = np.sqrt(max(1.0 - a * a, 0.0))
    for t in range(1, shape[0]):
        out[t] = a * out[t - 1] + s * e[t]
    return out


def _runs(rng: np.random.Generator, shape: tuple[int, int], p: float, max_len: int) -> np.ndarray:
    """(T, J) bool: runs of 1..max_len frames starting with probability p per (frame, joint)."""
    start = rng.random(shape) < p
    out = np.zeros(shape, bool)
    for t, j in zip(*np.nonzero(start), strict=True):
        out[t : t + int(rng.integers(1, max_len + 1)), j] = True
    return out


def detector_like_2d(
    keypoints: np.ndarray,
    rng: np.random.Generator,
    noise: DetectorNoise = DetectorNoise(),
    fps: float = 25.0,
) -> Noisy2D:
    """Clean keypoints (T, 17, 2) px of one window -> detector-like keypoints and confidences.

    Order: correlated jitter, outliers, left/right swaps (the score follows the error, so a
    swapped or jumped joint scores low), confidence from the error, then dropped joints: NaN
    and filled by detectors.cleaning.fill_segment, whose confidence (0, or half the bracketing
    scores for short gaps) is what the front end would pass on.
    """
    from detectors.cleaning import default_max_gap, fill_segment  # numpy-only, no cycle

    clean = np.asarray(keypoints, np.float64)
    n, j = clean.shape[:2]
    size = person_size(clean)
    a = float(np.exp(-1.0 / max(noise.tau_s * fps, 1e-6)))
    sigma = rng.uniform(*noise.sigma) * size
    kp = clean + _ar1(rng, (n, j, 2), a) * sigma * _JOINT_NOISE[None, :, None]
    jump = _runs(rng, (n, j), noise.outlier_p, 4)
    if jump.any():
        ang = rng.uniform(0.0, 2.0 * np.pi, (n, j))
        mag = rng.uniform(*noise.outlier_size, (n, j)) * size
        kp += jump[..., None] * np.stack([np.cos(ang), np.sin(ang)], -1) * mag[..., None]
    if rng.random() < noise.swap_p:
        group = _SWAP_GROUPS[int(rng.integers(len(_SWAP_GROUPS)))]
        t0 = int(rng.integers(n))
        t1 = min(n, t0 + int(rng.integers(1, max(2, n // 3) + 1)))
        for left, right in group:
            kp[t0:t1, [left, right]] = kp[t0:t1, [right, left]]
    err = np.linalg.norm(kp - clean, axis=-1) / size
    conf = confidence_from_error(err, rng.uniform(*noise.conf_top)).astype(np.float64)
    dropped = _runs(rng, (n, j), noise.drop_p, 6)
    if dropped.any():
        kp[dropped] = np.nan
        conf[dropped] = np.nan
        filled, conf = fill_segment(kp, conf, default_max_gap(fps))
        kp = filled
    return Noisy2D(kp.astype(np.float32), np.asarray(conf, np.float32), dropped)


def displace_joints(
    keypoints: np.ndarray,
    confidence: np.ndarray,
    rng: np.random.Generator,
    share: float = 0.2,
    size: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Stress test: move `share` of all (frame, joint) entries 0.2-0.6 person sizes away and set
    their confidence to 0, as a detector does for joints it lost; a lifter that reads the
    confidence should barely notice."""
    kp = np.array(keypoints, np.float64)
    conf = np.array(confidence, np.float32)
    s = person_size(kp) if size is None else float(size)
    hit = rng.random(conf.shape) < share
    ang = rng.uniform(0.0, 2.0 * np.pi, conf.shape)
    mag = rng.uniform(0.2, 0.6, conf.shape) * s
    kp += hit[..., None] * np.stack([np.cos(ang), np.sin(ang)], -1) * mag[..., None]
    conf[hit] = 0.0
    return kp.astype(np.float32), conf
