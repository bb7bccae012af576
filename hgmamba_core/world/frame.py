"""Camera frame -> world frame building blocks: rotation from an up vector, size, root placement.

Camera frame: x right, y down, z forward (metres). World frame: x right, y forward (the optical
axis projected onto the floor), z up; the camera sits on the z axis at its height above the
floor. Everything here is numpy in, numpy out, and knows nothing about how `up` was estimated.
"""

from __future__ import annotations

import numpy as np

from hgmamba_core.skeleton import NUM_JOINTS

MAX_REORIENT_DEG = 45.0  # bench/world.py: 0-18 degrees; more is a reprojection fit gone astray
H36M_MEAN_STANDING_HEIGHT_M = 1.64  # mean over S1-S11 of the chain below, measured on the GT
_TRUNK = ((0, 7), (7, 8), (8, 9), (9, 10))
_LEGS = (((1, 2), (2, 3)), ((4, 5), (5, 6)))


def standing_height(joints: np.ndarray) -> np.ndarray:
    """(..., 17, 3) -> (...) trunk + mean leg length, the skeleton's height when standing."""

    def bone(a: int, b: int) -> np.ndarray:
        return np.linalg.norm(joints[..., a, :] - joints[..., b, :], axis=-1)

    trunk = sum(bone(a, b) for a, b in _TRUNK)
    legs = [sum(bone(a, b) for a, b in leg) for leg in _LEGS]
    return trunk + 0.5 * (legs[0] + legs[1])


def rescale_to_height(rel: np.ndarray, height_m: float) -> np.ndarray:
    """Scale one person's root-relative track (F, 17, 3) to a median standing height."""
    h = standing_height(rel)
    med = np.nanmedian(h) if np.isfinite(h).any() else np.nan
    if not np.isfinite(med) or med < 1e-6:
        return rel
    return rel * np.float32(height_m / med)


def up_from_pitch_roll(pitch_deg: float, roll_deg: float = 0.0) -> np.ndarray:
    """World up (unit, camera coordinates) of a camera looking down by pitch, rolled by roll.

    Positive roll: the image's right side (camera +x) points below the horizon.
    """
    t, r = np.deg2rad(pitch_deg), np.deg2rad(roll_deg)
    return np.array([-np.sin(r) * np.cos(t), -np.cos(r) * np.cos(t), -np.sin(t)])


def pitch_roll_from_up(up_cam: np.ndarray) -> tuple[float, float]:
    """Inverse of up_from_pitch_roll: (pitch, roll) in degrees."""
    n = np.asarray(up_cam, dtype=np.float64)
    n = n / np.linalg.norm(n)
    pitch = np.arcsin(np.clip(-n[2], -1.0, 1.0))
    roll = np.arctan2(-n[0], -n[1])
    return float(np.degrees(pitch)), float(np.degrees(roll))


def rotation_from_up(up_cam: np.ndarray) -> np.ndarray:
    """R with world = R @ cam, given world up in camera coordinates (no yaw: y_w follows the
    optical axis projected onto the floor)."""
    n = np.asarray(up_cam, dtype=np.float64)
    n = n / np.linalg.norm(n)
    fwd = np.array([0.0, 0.0, 1.0]) - n[2] * n
    if np.linalg.norm(fwd) < 1e-9:  # looking straight down: image up is forward
        fwd = np.array([0.0, -1.0, 0.0]) - n[1] * n
    fwd /= np.linalg.norm(fwd)
    return np.stack([np.cross(fwd, n), fwd, n])


def camera_to_world_rotation(tilt_deg: float, roll_deg: float = 0.0) -> np.ndarray:
    """R with world = R @ cam for a camera looking down by tilt_deg, rolled by roll_deg.

    Camera x right, y down, z forward -> world x right, y forward (horizontal), z up.
    """
    return rotation_from_up(up_from_pitch_roll(tilt_deg, roll_deg))


def solve_translation(
    rel: np.ndarray, xy_px: np.ndarray, conf: np.ndarray, size: tuple[int, int], focal: float
) -> np.ndarray:
    """Per-frame camera-frame root position t (F, 3) so that rel + t projects onto xy_px.

    Linearised pinhole: f (X + tx) = u (Z + tz), f (Y + ty) = v (Z + tz), u, v relative to the
    image centre; weighted least squares over the joints. NaN where a frame has no 2D/3D pose.
    """
    F = rel.shape[0]
    w, h = size
    u = xy_px[..., 0].astype(np.float64) - w / 2.0
    v = xy_px[..., 1].astype(np.float64) - h / 2.0
    X, Y, Z = (rel[..., i].astype(np.float64) for i in range(3))
    wt = np.where(np.isfinite(conf), np.clip(conf, 0.0, 1.0), 0.0) + 1e-3
    A = np.zeros((F, 2 * NUM_JOINTS, 3))
    A[:, :NUM_JOINTS, 0] = focal
    A[:, :NUM_JOINTS, 2] = -u
    A[:, NUM_JOINTS:, 1] = focal
    A[:, NUM_JOINTS:, 2] = -v
    b = np.concatenate([u * Z - focal * X, v * Z - focal * Y], axis=1)
    W = np.concatenate([wt, wt], axis=1)
    good = np.isfinite(A).all(axis=(1, 2)) & np.isfinite(b).all(axis=1)
    t = np.full((F, 3), np.nan)
    if good.any():
        Ag, bg, Wg = A[good], b[good], W[good]
        AtA = np.einsum("fki,fk,fkj->fij", Ag, Wg, Ag)
        Atb = np.einsum("fki,fk,fk->fi", Ag, Wg, bg)
        AtA += 1e-9 * focal * focal * np.eye(3)  # tiny ridge: a degenerate frame cannot raise
        t[good] = np.linalg.solve(AtA, Atb[..., None])[..., 0]
    bad = ~(np.isfinite(t).all(axis=1) & (t[:, 2] > 0.1))
    if (~bad).any():
        t[bad & good] = np.nanmedian(t[~bad], axis=0)  # degenerate fit: typical position
    t[~good] = np.nan
    return t


def moving_average(x: np.ndarray, k: int) -> np.ndarray:
    """Centred moving average over axis 0 (odd window k) within runs of finite rows.

    Near a run's ends the window shrinks symmetrically, so a steady motion gets no lag there.
    NaN rows stay NaN.
    """
    if k <= 1 or x.shape[0] < 2:
        return x
    r = (k | 1) // 2
    ok = np.isfinite(x).reshape(x.shape[0], -1).all(axis=1)
    out = np.full(x.shape, np.nan)
    edges = np.diff(np.concatenate([[0], ok.astype(np.int8), [0]]))
    for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        seg = x[a:b].astype(np.float64)
        cs = np.concatenate([np.zeros((1,) + seg.shape[1:]), np.cumsum(seg, axis=0)])
        i = np.arange(b - a)
        rad = np.minimum(r, np.minimum(i, b - a - 1 - i))
        n = (2 * rad + 1).reshape((-1,) + (1,) * (x.ndim - 1))
        out[a:b] = (cs[i + rad + 1] - cs[i - rad]) / n
    return out


def _rodrigues(w: np.ndarray) -> np.ndarray:
    """Rotation matrix of an axis-angle vector (radians)."""
    th = float(np.linalg.norm(w))
    if th < 1e-12:
        return np.eye(3)
    k = w / th
    K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(th) * K + (1.0 - np.cos(th)) * K @ K


def _reprojection(
    w: np.ndarray, rel: np.ndarray, xy_px: np.ndarray, conf: np.ndarray, size, focal: float
) -> np.ndarray:
    """Residuals (in person heights, sqrt-score weighted) of rel rotated by w, rooted by
    solve_translation, against the 2D."""
    rr = rel @ _rodrigues(w).T
    X = rr + solve_translation(rr, xy_px, conf, size, focal)[:, None]
    uv = focal * X[..., :2] / X[..., 2:3] + np.array(size, np.float64) / 2.0
    ys = xy_px[..., 1]
    tall = np.maximum(np.nanmax(ys, axis=1) - np.nanmin(ys, axis=1), 1.0)
    wt = np.sqrt(np.clip(np.nan_to_num(conf), 0.0, 1.0))[..., None]
    return np.nan_to_num((uv - xy_px) / tall[:, None, None] * wt).ravel()


def reorient_to_2d(
    rel: np.ndarray,
    xy_px: np.ndarray,
    conf: np.ndarray,
    size: tuple[int, int],
    focal: float,
    stride: int = 3,
    iters: int = 10,
    frames: np.ndarray | None = None,
    min_frames: int = 10,
    max_samples: int = 200,
) -> tuple[np.ndarray, float]:
    """One rotation of a person's root-relative track (F, 17, 3) about its root so that it
    reprojects best onto the 2D through the pinhole camera, and its angle in degrees.

    A lifter that has seen few viewpoints returns the body as one of its training cameras
    would see it (bench/world.py: the pelvis->thorax direction 4-17 degrees off); the 2D's
    foreshortening under perspective says how the body is really turned towards the camera.
    Gauss-Newton on an axis-angle over every stride-th frame (at most max_samples of them),
    steps capped at ~11 degrees.
    frames: (F,) bool, the frames to fit on (e.g. upright ones, whose articulation a lifter
    gets right: on a bent body a rotation also soaks up articulation errors); with fewer than
    min_frames of them the track is left as it is.
    """
    ok = np.isfinite(rel).all(axis=(1, 2)) & np.isfinite(xy_px).all(axis=(1, 2))
    if frames is not None:
        ok &= frames
    if ok.sum() < min_frames:
        return rel, 0.0
    sub = np.flatnonzero(ok)
    sub = sub[:: max(stride, -(-sub.size // max_samples))]  # a long track costs no more
    r, kp, sc = rel[sub].astype(np.float64), xy_px[sub].astype(np.float64), conf[sub]
    w = np.zeros(3)
    for _ in range(iters):
        r0 = _reprojection(w, r, kp, sc, size, focal)
        J = np.stack(
            [(_reprojection(w + d, r, kp, sc, size, focal) - r0) / 1e-4 for d in 1e-4 * np.eye(3)],
            axis=1,
        )
        step = np.clip(np.linalg.lstsq(J, -r0, rcond=None)[0], -0.2, 0.2)
        w = w + step
        if np.abs(step).max() < 1e-5:
            break
    angle = float(np.degrees(np.linalg.norm(w)))
    if not np.isfinite(angle) or angle > MAX_REORIENT_DEG:  # a fit gone astray: keep the lift
        return rel, 0.0
    return rel @ _rodrigues(w).T, angle
