"""Camera frame -> world frame for lifted poses: size, root trajectory, tilt, floor.

The lifter returns each person root-relative in the camera frame (x right, y down, z forward,
metres). To give users one world frame (z up, floor at z = 0) we assume, per person and clip:
1. Size: the skeleton is rescaled so its median "standing height" (pelvis-spine-thorax-neck-head
   plus the mean ankle-knee-hip leg length) equals the Human3.6M subjects' mean, 1.64 m, i.e.
   an average adult. Monocular lifting has no absolute scale; this only fixes drift or an
   off-scale model.
2. Root trajectory: a pinhole camera with its principal point at the image centre and focal
   length f = max(width, height) pixels (about 53 degrees across the long side, between a
   phone's main camera and Human3.6M's cameras). Per frame, the translation t that best
   projects the scaled 3D pose onto the 2D keypoints (confidence-weighted linear least
   squares) places the root; a short moving average removes jitter.
3. Tilt: the camera looks down by `tilt_deg` (default 10 degrees) with no roll. World axes:
   x right, y forward (away from the camera, horizontal), z up; the camera is on the z axis.
4. Floor: each person is shifted vertically so the 5th percentile over the clip of their lower
   ankle's height is 0 (ankles are the lowest joints H36M-17 has; the sole is ~8 cm lower).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hgmamba_core.skeleton import H36M_ROOT, NUM_JOINTS

H36M_MEAN_STANDING_HEIGHT_M = 1.64  # mean over S1-S11 of the chain below, measured on the GT
_TRUNK = ((0, 7), (7, 8), (8, 9), (9, 10))
_LEGS = (((1, 2), (2, 3)), ((4, 5), (5, 6)))
_ANKLES = (3, 6)


@dataclass(frozen=True)
class WorldConfig:
    """Assumptions of the camera -> world conversion (see the module docstring)."""

    tilt_deg: float = 10.0
    place_root: bool = True  # False: every root stays above the origin
    focal_px: float | None = None  # None: max(width, height)
    standing_height_m: float | None = H36M_MEAN_STANDING_HEIGHT_M  # None: keep the model's scale
    root_smooth_frames: int = 5
    floor_percentile: float = 5.0


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


def camera_to_world_rotation(tilt_deg: float) -> np.ndarray:
    """R with world = R @ cam for a camera looking down by tilt_deg, no roll.

    Camera x right, y down, z forward -> world x right, y forward (horizontal), z up.
    """
    t = np.deg2rad(tilt_deg)
    s, c = np.sin(t), np.cos(t)
    return np.array([[1.0, 0.0, 0.0], [0.0, -s, c], [0.0, -c, -s]], dtype=np.float64)


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


def to_world(
    rel_cam: np.ndarray,
    keypoints_px: np.ndarray,
    scores: np.ndarray,
    size: tuple[int, int],
    cfg: WorldConfig | None = None,
) -> np.ndarray:
    """(F, P, 17, 3) camera-frame root-relative poses -> (F, P, 17, 3) world metres (z up).

    keypoints_px (F, P, 17, 2) and scores (F, P, 17) are the 2D the poses were lifted from.
    """
    cfg = cfg or WorldConfig()
    rel_cam = np.asarray(rel_cam, dtype=np.float64)
    focal = float(cfg.focal_px or max(size))
    R = camera_to_world_rotation(cfg.tilt_deg)
    out = np.full(rel_cam.shape, np.nan, dtype=np.float32)
    for p in range(rel_cam.shape[1]):
        rel = rel_cam[:, p] - rel_cam[:, p, H36M_ROOT : H36M_ROOT + 1]
        if cfg.standing_height_m:
            rel = rescale_to_height(rel, cfg.standing_height_m)
        if cfg.place_root:
            t = solve_translation(rel, keypoints_px[:, p], scores[:, p], size, focal)
            t = moving_average(t, cfg.root_smooth_frames)
            cam = rel + t[:, None, :]
        else:
            cam = rel
        world = cam @ R.T
        low = np.fmin(world[:, _ANKLES[0], 2], world[:, _ANKLES[1], 2])
        low = low[np.isfinite(low)]
        if low.size:
            world[..., 2] -= np.percentile(low, cfg.floor_percentile)
        out[:, p] = world.astype(np.float32)
    return out
