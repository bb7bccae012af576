"""Cleaning 2D tracks: drop unsure joints, bridge short gaps, split at long ones, smooth.

Arrays are one person's track, keypoints (F, 17, 2) in pixels and scores (F, 17), NaN where
missing. Policy (the lifter needs all 17 joints in every frame it lifts):

- a joint whose score is below the threshold becomes NaN, like a joint never detected;
- a frame counts as present when at least `min_joints` joints survive; runs of present frames
  separated by at most `max_gap` missing frames form one segment, a longer gap splits the track
  (each segment is lifted on its own), frames outside segments stay NaN;
- inside a segment every missing joint is filled: linear interpolation in time between the
  nearest observations, the nearest observation held at a segment's ends, and a joint never
  seen in the segment placed on its parent joint (H36M tree);
- confidence of a filled joint: INTERP_CONF_FACTOR x the smaller of the two bracketing scores
  when the joint's gap is at most `max_gap` frames (a short, trustworthy bridge, still marked
  as less sure than what was seen), and 0 for anything longer, held or placed on the parent
  (a guess the lifter should lean on least).
"""

from __future__ import annotations

import math

import numpy as np

from hgmamba_core.skeleton import H36M_PARENTS

DEFAULT_THRESHOLD = 0.3
DEFAULT_MAX_GAP_SECONDS = 0.5
DEFAULT_MIN_JOINTS = 5
INTERP_CONF_FACTOR = 0.5


def default_max_gap(fps: float) -> int:
    """About 0.5 s of frames (at least 1): longer holes split a track."""
    return max(1, int(round(DEFAULT_MAX_GAP_SECONDS * (fps if fps and fps > 0 else 30.0))))


def mask_low_confidence(
    keypoints: np.ndarray, scores: np.ndarray, threshold: float = DEFAULT_THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """Copies with joints scored below `threshold` (or non-finite) set to NaN."""
    kp = np.array(keypoints, dtype=np.float32)
    sc = np.array(scores, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(kp).all(-1) & np.isfinite(sc) & (sc >= threshold))
    kp[bad] = np.nan
    sc[bad] = np.nan
    return kp, sc


def find_segments(present: np.ndarray, max_gap: int) -> list[tuple[int, int]]:
    """[start, stop) runs of present frames, merged across holes of <= max_gap frames."""
    idx = np.flatnonzero(np.asarray(present, dtype=bool))
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) - 1 > max_gap)
    starts = np.concatenate([idx[:1], idx[breaks + 1]])
    stops = np.concatenate([idx[breaks], idx[-1:]]) + 1
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _fill_joint(x: np.ndarray, s: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Fill one joint's (n, 2) positions / (n,) scores inside a segment (see module doc)."""
    ok = np.isfinite(x).all(-1)
    idx = np.flatnonzero(ok)
    n = len(x)
    t = np.arange(n)
    out = np.empty_like(x)
    for c in range(x.shape[1]):
        out[:, c] = np.interp(t, idx, x[idx, c])  # holds the end values outside [idx0, idx-1]
    right = np.searchsorted(idx, t)  # first observation at or after t
    left = right - 1
    inside = (~ok) & (right < idx.size) & (left >= 0)
    sc = np.where(ok, s, 0.0).astype(np.float32)
    if inside.any():
        li, ri = idx[left[inside]], idx[right[inside]]
        short = (ri - li - 1) <= max_gap
        bridge = INTERP_CONF_FACTOR * np.minimum(s[li], s[ri])
        sc[inside] = np.where(short, bridge, 0.0)
    return out, sc


def fill_segment(
    keypoints: np.ndarray, scores: np.ndarray, max_gap: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fill every NaN joint of one segment (n, 17, 2) / (n, 17); see the module doc."""
    kp = np.array(keypoints, dtype=np.float32)
    sc = np.array(scores, dtype=np.float32)
    seen = np.isfinite(kp).all(-1).any(0)  # (17,)
    for j in range(kp.shape[1]):  # parents come before children in H36M order
        if seen[j]:
            kp[:, j], sc[:, j] = _fill_joint(kp[:, j], sc[:, j], max_gap)
    for j in range(kp.shape[1]):
        if not seen[j]:
            p = H36M_PARENTS[j] if kp.shape[1] == len(H36M_PARENTS) else -1
            if p >= 0:
                kp[:, j] = kp[:, p]
            else:  # the root itself never seen: centre of the other joints
                kp[:, j] = np.nanmean(np.where(seen[None, :, None], kp, np.nan), axis=1)
            sc[:, j] = 0.0
    return kp, sc


def clean_track(
    keypoints: np.ndarray,
    scores: np.ndarray,
    max_gap: int,
    threshold: float = DEFAULT_THRESHOLD,
    min_joints: int = DEFAULT_MIN_JOINTS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Mask, segment and fill one H36M-17 track.

    Returns keypoints (F, 17, 2), scores (F, 17) (NaN outside segments), `observed` (F, 17)
    bool (True where the joint was detected and kept, False where filled in) and the
    [start, stop) segments.
    """
    kp, sc = mask_low_confidence(keypoints, scores, threshold)
    observed = np.isfinite(kp).all(-1)
    present = observed.sum(-1) >= min_joints
    kp[~present] = np.nan
    sc[~present] = np.nan
    observed &= present[:, None]
    segments = find_segments(present, max_gap)
    out_kp = np.full_like(kp, np.nan)
    out_sc = np.full_like(sc, np.nan)
    for a, b in segments:
        out_kp[a:b], out_sc[a:b] = fill_segment(kp[a:b], sc[a:b], max_gap)
    return out_kp, out_sc, observed, segments


def one_euro(
    x: np.ndarray,
    fps: float,
    min_cutoff: float = 1.0,
    beta: float = 20.0,
    d_cutoff: float = 1.0,
) -> np.ndarray:
    """One-Euro filter (Casiez et al., CHI 2012) along axis 0 of a NaN-free array (n, ...).

    Cutoff (Hz) = min_cutoff + beta * |speed|: still joints are smoothed hard, fast ones
    follow with little lag. Pass coordinates in a resolution-free unit (we use
    normalize_screen's, where the frame width spans 2) so the defaults fit any video. The
    defaults were picked on synthetic 5/1000-of-a-width noise at 30 fps: a still joint's
    error drops ~2x, a 1 Hz swing keeps about its raw error (lag and noise trade off).
    """
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return x.astype(np.float32)
    te = 1.0 / (fps if fps and fps > 0 else 30.0)

    def alpha(cutoff: np.ndarray | float) -> np.ndarray | float:
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / te)

    out = np.empty_like(x)
    prev = out[0] = x[0]
    dprev = np.zeros_like(x[0])
    a_d = alpha(d_cutoff)
    for i in range(1, len(x)):
        dx = (x[i] - prev) / te
        dprev = a_d * dx + (1.0 - a_d) * dprev
        a = alpha(min_cutoff + beta * np.abs(dprev))
        prev = out[i] = a * x[i] + (1.0 - a) * prev
    return out.astype(np.float32)
