"""3D pose metrics as the field reports them. Inputs (frames, J, 3) in mm; outputs mm or percent.

`mpjpe` aligns nothing (pass root-relative poses for Protocol #1); `p_mpjpe` does a per-frame
similarity Procrustes (Protocol #2); `n_mpjpe` fits only a scale; `mpjve` compares velocities.
PCK / AUC follow MPI-INF-3DHP practice: PCK at 150 mm, AUC = mean PCK over 0, 5, ..., 150 mm.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from hgmamba_core.errors import HGMambaError

AUC_THRESHOLDS = np.arange(0.0, 151.0, 5.0)


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim < 2 or pred.shape[-1] != 3:
        raise HGMambaError(
            f"prediction {pred.shape} and ground truth {gt.shape} must match (..., J, 3)"
        )
    return pred, gt


def joint_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean error per frame and joint, (..., J)."""
    pred, gt = _pair(pred, gt)
    return np.linalg.norm(pred - gt, axis=-1)


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean per-joint position error (no alignment)."""
    return float(joint_errors(pred, gt).mean())


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """pred (F, J, 3) aligned to gt per frame by the best rotation (no reflection), scale, translation."""
    pred, gt = _pair(pred, gt)
    mu_p = pred.mean(axis=-2, keepdims=True)
    mu_g = gt.mean(axis=-2, keepdims=True)
    p0, g0 = pred - mu_p, gt - mu_g
    norm_p = np.sqrt(np.sum(p0**2, axis=(-2, -1), keepdims=True))
    norm_g = np.sqrt(np.sum(g0**2, axis=(-2, -1), keepdims=True))
    norm_p = np.maximum(norm_p, 1e-12)
    norm_g = np.maximum(norm_g, 1e-12)
    p0, g0 = p0 / norm_p, g0 / norm_g
    # Kabsch: maximise tr(R^T H) with H = g0^T p0; R = U diag(1, 1, d) V^T.
    h = np.swapaxes(g0, -1, -2) @ p0
    u, s, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(u @ vt))
    d = np.where(d == 0, 1.0, d)
    u[..., :, -1] *= d[..., None]
    s[..., -1] *= d
    rot = u @ vt  # maps centred, unit-norm pred onto gt: g ~ rot @ p
    scale = s.sum(axis=-1)[..., None, None] * norm_g / norm_p
    return scale * (pred - mu_p) @ np.swapaxes(rot, -1, -2) + mu_g


def p_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Protocol #2: MPJPE after per-frame similarity Procrustes alignment."""
    return mpjpe(procrustes_align(pred, gt), gt)


def n_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """MPJPE after scaling pred per frame by the least-squares factor <pred, gt> / <pred, pred>."""
    pred, gt = _pair(pred, gt)
    num = np.sum(pred * gt, axis=(-2, -1), keepdims=True)
    den = np.maximum(np.sum(pred * pred, axis=(-2, -1), keepdims=True), 1e-12)
    return mpjpe(num / den * pred, gt)


def mpjve(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean per-joint velocity error: MPJPE of first differences along frames (mm / frame)."""
    pred, gt = _pair(pred, gt)
    if pred.shape[0] < 2:
        raise HGMambaError("velocity error needs at least 2 frames")
    return mpjpe(np.diff(pred, axis=0), np.diff(gt, axis=0))


def pck(pred: np.ndarray, gt: np.ndarray, threshold: float = 150.0) -> float:
    """Percent of joints whose error is at most `threshold` mm."""
    return float((joint_errors(pred, gt) <= threshold).mean() * 100.0)


def auc(pred: np.ndarray, gt: np.ndarray) -> float:
    """Area under the PCK curve: mean PCK (percent) over thresholds 0, 5, ..., 150 mm."""
    err = joint_errors(pred, gt)
    return float(np.mean([(err <= t).mean() for t in AUC_THRESHOLDS]) * 100.0)


def mean_over_actions(per_action: Mapping[str, float]) -> float:
    """The field's average: the plain mean of per-action numbers (not frame-weighted)."""
    if not per_action:
        raise HGMambaError("no actions to average")
    return float(np.mean(list(per_action.values())))


def per_action(values: np.ndarray, actions: Sequence[str]) -> dict[str, float]:
    """Mean of per-frame `values` (F,) grouped by each frame's action label (F,)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    labels = np.asarray(actions)
    if labels.shape != values.shape:
        raise HGMambaError(f"{labels.shape[0]} action labels for {values.shape[0]} values")
    return {str(a): float(values[labels == a].mean()) for a in sorted(set(labels.tolist()))}
