"""Where is the floor? Gravity and the floor plane from the people's feet and bodies.

Two independent cues, both in camera coordinates after root placement:
- the floor plane: over stance frames (the person upright, the lower ankle nearly still) the
  lowest ankle touches the floor, so those points lie ANKLE_ABOVE_FLOOR_M above one plane;
  several people or one walking person sample it over metres of floor;
- the body-up prior: the mean pelvis->thorax direction of upright frames. It needs no motion,
  but a body leans (Human3.6M GT: 2-5 degrees median from vertical, forwards when walking).
`fuse_floor` combines them as a maximum a-posteriori normal: the plane residuals weigh
against a Gaussian prior around the body-up direction, so the directions the feet do not
constrain (one still person, a walk along a line) fall back to the prior smoothly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ANKLE_ABOVE_FLOOR_M = 0.06  # H36M GT: the stance ankle's median height is 0.045-0.072 m
_PELVIS, _THORAX = 0, 8  # H36M-17
_HIPS, _KNEES, _ANKLES = (1, 4), (2, 5), (3, 6)


@dataclass(frozen=True)
class StanceFeet:
    """The lowest ankle of every stance frame: points (N, 3) camera metres and who/when."""

    points: np.ndarray
    person: np.ndarray  # (N,) person index
    frame: np.ndarray  # (N,) frame index
    segment: np.ndarray  # (N,) id of the contiguous stance run (for block resampling)

    @property
    def count(self) -> int:
        return int(self.points.shape[0])

    @property
    def persons(self) -> int:
        return int(np.unique(self.person).size)


@dataclass(frozen=True)
class PlaneFit:
    """Floor plane n . x + d = 0 in camera coordinates, n = world up (unit), d = camera height."""

    normal: np.ndarray
    height_m: float
    residual_m: float  # robust std of the stance points' distances to the plane
    spread_m: tuple[float, float]  # std of the stance points along the plane's two axes
    inliers: int


def unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two directions, degrees."""
    c = float(np.clip(np.dot(unit(a), unit(b)), -1.0, 1.0))
    return float(np.degrees(np.arccos(c)))


def upright_mask(
    cam: np.ndarray, up: np.ndarray | None = None, max_deg: float = 30.0
) -> np.ndarray:
    """(F, 17, 3) -> (F,) frames where both legs are nearly straight and under the trunk.

    Sitting, kneeling or lying frames fail: the thigh is then far from the trunk's direction.
    With `up` given, the trunk must also lie within max_deg of it.
    """
    trunk = cam[:, _THORAX] - cam[:, _PELVIS]
    ok = np.isfinite(trunk).all(-1)
    trunk_u = np.where(ok[:, None], trunk, 1.0)
    trunk_u = unit(trunk_u)
    cos_max = np.cos(np.deg2rad(max_deg))
    for hip, knee, ank in zip(_HIPS, _KNEES, _ANKLES, strict=True):
        leg = cam[:, hip] - cam[:, ank]
        full = np.linalg.norm(cam[:, hip] - cam[:, knee], axis=-1) + np.linalg.norm(
            cam[:, knee] - cam[:, ank], axis=-1
        )
        straight = np.linalg.norm(leg, axis=-1) >= 0.85 * full
        leg_u = unit(np.where(np.isfinite(leg), leg, 1.0))
        ok &= straight & ((leg_u * trunk_u).sum(-1) >= cos_max) & np.isfinite(leg).all(-1)
    if up is not None:
        ok &= trunk_u @ unit(up) >= cos_max
    return ok


MIN_UPRIGHT_FRAMES = 5  # per person, for the body-up prior


def body_up_prior(
    cams: list[np.ndarray], min_frames: int = MIN_UPRIGHT_FRAMES
) -> tuple[np.ndarray | None, int]:
    """Mean pelvis->thorax direction over upright frames, each person weighted equally.

    Upright: both legs straight and within 20 degrees of the trunk. A person with fewer than
    min_frames such frames (sitting, bending) does not vote, nor does a single-frame clip's.
    Returns (unit up in camera coordinates or None, number of upright frames used).
    """
    dirs, used = [], 0
    for cam in cams:
        m = upright_mask(cam, max_deg=20.0)
        if m.sum() < min(min_frames, max(1, cam.shape[0] // 2)):
            continue
        d = unit(cam[m, _THORAX] - cam[m, _PELVIS])
        dirs.append(unit(d.mean(0)))
        used += int(m.sum())
    if not dirs:
        return None, 0
    return unit(np.mean(dirs, axis=0)), used


def _stance_leg_ok(cam: np.ndarray, up: np.ndarray, leg: np.ndarray, max_deg: float) -> np.ndarray:
    """(F,) the chosen leg (0 right, 1 left) is straight and vertical, the trunk near up."""
    F = cam.shape[0]
    idx = np.arange(F)
    hip = cam[idx, np.asarray(_HIPS)[leg]]
    knee = cam[idx, np.asarray(_KNEES)[leg]]
    ank = cam[idx, np.asarray(_ANKLES)[leg]]
    full = np.linalg.norm(hip - knee, axis=-1) + np.linalg.norm(knee - ank, axis=-1)
    vec = hip - ank
    length = np.linalg.norm(vec, axis=-1)
    cos_max = np.cos(np.deg2rad(max_deg))
    with np.errstate(invalid="ignore", divide="ignore"):
        straight = length >= 0.85 * full
        vertical = (vec @ up) / length >= cos_max
        trunk = cam[:, _THORAX] - cam[:, _PELVIS]
        trunk_up = (trunk @ up) / np.linalg.norm(trunk, axis=-1) >= cos_max
    return straight & vertical & trunk_up


def _speed_2d(kp: np.ndarray, which: np.ndarray, fps: float, lag: int) -> np.ndarray:
    """Pixel speed of the chosen ankle, in body heights per second (depth noise-free)."""
    from hgmamba_core.world.frame import moving_average

    F = kp.shape[0]
    idx = np.arange(F)
    a, b = np.clip(idx - lag, 0, F - 1), np.clip(idx + lag, 0, F - 1)
    ank = moving_average(kp[:, list(_ANKLES)], 2 * lag + 1)[idx, which]  # (F, 2): less jitter
    step = np.linalg.norm(ank[b] - ank[a], axis=-1)
    ys = kp[..., 1]
    tall = np.full(F, np.nan)
    some = np.isfinite(ys).any(axis=1)  # frames where the person has any joint (no NaN warning)
    tall[some] = np.nanmax(ys[some], axis=1) - np.nanmin(ys[some], axis=1)
    tall = np.where(np.isfinite(tall) & (tall > 1.0), tall, np.nan)
    dt = np.maximum(b - a, 1) / max(fps, 1.0)
    return step / tall / dt


def stance_feet(
    cams: list[np.ndarray],
    ankle_conf: list[np.ndarray],
    up: np.ndarray,
    fps: float,
    keypoints: list[np.ndarray] | None = None,
    max_speed: float = 0.4,
    min_conf: float = 0.15,
) -> StanceFeet:
    """Lowest ankle (along `up`) of every frame where it is nearly still and seen in the 2D.

    cams: per person (F, 17, 3) camera-frame metres; ankle_conf: per person (F, 2) 2D scores of
    the right/left ankle; keypoints: per person (F, 17, 2) pixels. Still: the ankle moves less
    than max_speed body heights per second in the image (2D, so the root's depth noise does not
    count; without keypoints, in 3D, max_speed x 1.7 m/s), over a centred ~0.2 s difference of
    the ankle averaged over ~0.2 s (detector jitter).
    The stance leg must be straight and within 30 degrees of up, the trunk too.
    """
    up = unit(up)
    pts, who, when, seg = [], [], [], []
    next_seg = 0
    lag = max(1, int(round(0.1 * max(fps, 1.0))))
    for p, (cam, conf) in enumerate(zip(cams, ankle_conf, strict=True)):
        ank = cam[:, list(_ANKLES)]  # (F, 2, 3)
        hgt = ank @ up
        low = np.where(
            np.nan_to_num(hgt[:, 0], nan=np.inf) <= np.nan_to_num(hgt[:, 1], nan=np.inf), 0, 1
        )
        F = cam.shape[0]
        idx = np.arange(F)
        foot = ank[idx, low]
        if keypoints is not None:
            speed = _speed_2d(np.asarray(keypoints[p], np.float64), low, fps, lag)
        else:
            a, b = np.clip(idx - lag, 0, F - 1), np.clip(idx + lag, 0, F - 1)
            dt = np.maximum(b - a, 1) / max(fps, 1.0)
            speed = np.linalg.norm(ank[b, low] - ank[a, low], axis=-1) / dt / 1.7
        c = np.asarray(conf, dtype=np.float64)[idx, low]
        ok = (
            np.isfinite(foot).all(-1)
            & (np.nan_to_num(speed, nan=np.inf) <= max_speed)
            & (np.nan_to_num(c, nan=0.0) >= min_conf)
            & _stance_leg_ok(cam, up, low, 30.0)
        )
        if not ok.any():
            continue
        runs = np.cumsum(np.diff(np.concatenate([[0], ok.astype(np.int8)])) == 1)
        pts.append(foot[ok])
        who.append(np.full(int(ok.sum()), p))
        when.append(idx[ok])
        seg.append(runs[ok] + next_seg)
        next_seg = int(seg[-1].max()) + 1
    if not pts:
        e = np.zeros((0,), dtype=np.int64)
        return StanceFeet(np.zeros((0, 3)), e, e, e)
    return StanceFeet(
        np.concatenate(pts), np.concatenate(who), np.concatenate(when), np.concatenate(seg)
    )


def _map_normal(cov: np.ndarray, prior: np.ndarray, prior_weight: float) -> np.ndarray:
    """argmin over unit n of n^T cov n + prior_weight |n - prior|^2.

    Stationarity gives n = prior_weight (cov - mu I)^-1 prior with mu below cov's smallest
    eigenvalue; |n| = 1 fixes mu, found by bisection in cov's eigenbasis.
    """
    lam, vec = np.linalg.eigh(cov)
    if prior_weight <= 0:
        n = vec[:, 0]
        return n if n @ prior >= 0 else -n
    b = prior_weight * (vec.T @ prior)

    def norm(mu: float) -> float:
        return float(np.linalg.norm(b / (lam - mu)))

    hi = lam[0]
    lo = lam[0] - (np.abs(b).sum() + 1.0)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if mid >= hi or mid <= lo:
            break
        lo, hi = (mid, hi) if norm(mid) < 1.0 else (lo, mid)
    return unit(vec @ (b / (lam - lo)))


def _group_means(P: np.ndarray, w: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per-point weighted mean of the point's group (N, 3)."""
    ng = int(groups.max()) + 1 if groups.size else 0
    sw = np.bincount(groups, weights=w, minlength=ng)
    sums = np.stack([np.bincount(groups, weights=w * P[:, k], minlength=ng) for k in range(3)], 1)
    means = sums / np.maximum(sw, 1e-12)[:, None]
    return means[groups]


def fit_floor(
    points: np.ndarray,
    prior: np.ndarray,
    prior_sigma_deg: float = 4.0,
    iters: int = 10,
    weights: np.ndarray | None = None,
    obs_per_point: float = 1.0,
    groups: np.ndarray | None = None,
    extra_info: np.ndarray | None = None,
    plane_sigma_deg: float = 0.0,
) -> PlaneFit:
    """Robust (IRLS, Tukey biweight) plane through stance ankles, pulled towards a prior up.

    The prior enters as a Gaussian of std prior_sigma_deg on the normal (0: plane only; inf:
    prior only). obs_per_point < 1 discounts correlated points (consecutive frames of one
    stance count about once). With `groups` (the person of each point) every person gets their
    own plane offset: one camera cannot tell a person's size from their distance, so only the
    directions along which each person's feet move say where the floor's normal points; the
    height is then the median of the persons' offsets. extra_info (3x3, in the same units as
    the plane term) adds other evidence on the normal, e.g. vertical_info of the 2D verticals. Heights are to the floor, ANKLE_ABOVE_FLOOR_M
    below the ankles.
    """
    P = np.asarray(points, dtype=np.float64)
    prior = unit(prior)
    w = np.ones(len(P)) if weights is None else np.asarray(weights, dtype=np.float64).copy()
    g = np.zeros(len(P), dtype=np.int64) if groups is None else np.asarray(groups, np.int64)
    n = prior
    wi = w.copy()
    mean = _group_means(P, wi, g)
    scale = 0.05
    for _ in range(iters):
        r = (P - mean) @ n
        rv = r[w > 0]
        mad = 1.4826 * float(np.median(np.abs(rv - np.median(rv)))) if rv.size else scale
        scale = max(mad, 0.01)
        u = r / (4.685 * scale)
        wi = w * np.where(np.abs(u) < 1, (1 - u * u) ** 2, 0.0)
        if wi.sum() < 3:
            wi = w.copy()
            break
        mean = _group_means(P, wi, g)
        X = P - mean
        cov = obs_per_point * (wi[:, None] * X).T @ X / (scale * scale)
        if plane_sigma_deg > 0:  # the plane's tilt is never surer than this (its bias)
            cov = _cap_info(cov, n, plane_sigma_deg)
        if extra_info is not None:
            cov = cov + extra_info
        if np.isinf(prior_sigma_deg):
            n = prior
        else:
            pw = 1.0 / np.deg2rad(prior_sigma_deg) ** 2 if prior_sigma_deg > 0 else 0.0
            n = _map_normal(cov, prior, pw)
    offs = -(mean @ n)
    keep = wi > 0
    if keep.any():  # each person's offset counts once (the average adult sets the scale)
        tot = np.bincount(g[keep], weights=wi[keep])
        d = _weighted_median(offs[keep], wi[keep] / tot[g[keep]])
    else:
        d = float(np.median(offs))
    X = P - mean
    inl = np.abs(X @ n) < 3 * scale
    Q = X[inl] if inl.sum() else np.zeros((1, 3))
    e1 = unit(np.cross(n, [1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.cross(n, [0.0, 1.0, 0.0]))
    e2 = np.cross(n, e1)
    c = np.cov(np.stack([Q @ e1, Q @ e2])) if len(Q) > 1 else np.zeros((2, 2))
    sv = np.sqrt(np.clip(np.linalg.eigvalsh(c), 0, None))[::-1]
    return PlaneFit(
        normal=n, height_m=d + ANKLE_ABOVE_FLOOR_M, residual_m=float(scale),
        spread_m=(float(sv[0]), float(sv[1])), inliers=int(inl.sum()),
    )  # fmt: skip


def _cap_info(cov: np.ndarray, n: np.ndarray, sigma_deg: float) -> np.ndarray:
    """Scale a plane's information so that no tilt of the normal n is known better than
    sigma_deg: many stance points beat noise down, not a lifter's systematic depth error."""
    e1 = unit(np.cross(n, [1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.cross(n, [0.0, 1.0, 0.0]))
    T = np.stack([e1, np.cross(n, e1)], axis=1)
    top = float(np.linalg.eigvalsh(T.T @ cov @ T)[-1])
    cap = 1.0 / np.deg2rad(sigma_deg) ** 2
    return cov * min(1.0, cap / top) if top > 0 else cov


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    o = np.argsort(x)
    cw = np.cumsum(w[o])
    return float(x[o][np.searchsorted(cw, 0.5 * cw[-1])])


VERTICAL_SIGMA_RAD = 0.1  # a walking body's 2D axis sways ~5 degrees about the true vertical


@dataclass(frozen=True)
class Verticals:
    """Image evidence on up: each upright person-frame's mid-ankle -> thorax line in the image,
    as the unit normal (N, 3) of the plane it spans with the camera centre; up lies in each."""

    normals: np.ndarray
    person: np.ndarray

    @property
    def count(self) -> int:
        return int(self.normals.shape[0])


def upright_2d(kp: np.ndarray, max_deg: float = 15.0) -> np.ndarray:
    """(F, 17, 2) px -> (F,) frames that look upright in the image alone: both legs straight
    (the knee on the hip-ankle line) and the trunk in line with the legs. Needs no 3D, so a
    lifter that fails on an unusual view cannot veto it."""
    kp = np.asarray(kp, np.float64)
    hip = 0.5 * (kp[:, _HIPS[0]] + kp[:, _HIPS[1]])
    ank = 0.5 * (kp[:, _ANKLES[0]] + kp[:, _ANKLES[1]])
    leg, trunk = hip - ank, kp[:, _THORAX] - hip
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (leg * trunk).sum(-1) / (
            np.linalg.norm(leg, axis=-1) * np.linalg.norm(trunk, axis=-1)
        )
        ok = cos >= np.cos(np.deg2rad(max_deg))
        for h, k, a in zip(_HIPS, _KNEES, _ANKLES, strict=True):
            full = np.linalg.norm(kp[:, h] - kp[:, k], axis=-1) + np.linalg.norm(
                kp[:, k] - kp[:, a], axis=-1
            )
            ok &= np.linalg.norm(kp[:, h] - kp[:, a], axis=-1) >= 0.9 * full
    return ok & np.isfinite(kp[:, list(_HIPS + _ANKLES + (_THORAX,))]).all((1, 2))


def vertical_lines(
    keypoints: list[np.ndarray],
    scores: list[np.ndarray],
    size: tuple[int, int],
    focal: float,
    min_conf: float = 0.3,
    cams: list[np.ndarray] | None = None,
) -> Verticals:
    """People stand vertically: their image axes all pass through the vertical vanishing point.

    The line from the mid-ankle to the thorax of every frame that looks upright in the image
    (upright_2d; joints confident, >= 20 px long) spans a plane with the camera centre that
    contains the world vertical at that person. With the lifted poses `cams`, frames whose
    body is bent (sitting: thigh >= 35 degrees off the trunk) are left out too; that test uses
    only the body's own angles, not its orientation, which a lifter gets wrong on odd views.
    """
    c = np.array([size[0] / 2.0, size[1] / 2.0])
    normals, who = [], []
    for p, (a, b) in enumerate(upright_axes(keypoints, scores, min_conf, cams)):
        if not len(a):
            continue
        A = np.concatenate([(a - c) / focal, np.ones((len(a), 1))], 1)
        B = np.concatenate([(b - c) / focal, np.ones((len(a), 1))], 1)
        normals.append(unit(np.cross(A, B)))
        who.append(np.full(len(a), p))
    if not normals:
        return Verticals(np.zeros((0, 3)), np.zeros(0, np.int64))
    return Verticals(np.concatenate(normals), np.concatenate(who))


def upright_axes(
    keypoints: list[np.ndarray],
    scores: list[np.ndarray],
    min_conf: float = 0.3,
    cams: list[np.ndarray] | None = None,
    image_upright: bool = True,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per person the (mid-ankle, thorax) pixels (N, 2) of frames that look upright in the
    image (see vertical_lines; image_upright=False: only the lifted body's own angles are
    tested, with cams): the people's image axes."""
    out = []
    for p, (kp, sc) in enumerate(zip(keypoints, scores, strict=True)):
        kp = np.asarray(kp, np.float64)
        sc = np.nan_to_num(np.asarray(sc, np.float64), nan=0.0)
        a = 0.5 * (kp[:, _ANKLES[0]] + kp[:, _ANKLES[1]])
        b = kp[:, _THORAX]
        conf = np.min(sc[:, [_ANKLES[0], _ANKLES[1], 11, 14]], axis=1)
        ok = conf >= min_conf
        if image_upright:
            ok &= upright_2d(kp)
        if cams is not None:
            ok &= upright_mask(cams[p], max_deg=35.0)
        ok &= np.linalg.norm(np.nan_to_num(b - a), axis=-1) >= 20.0
        out.append((a[ok], b[ok]))
    return out


RULER_MIN_FRAMES = 5  # upright frames per person for the ruler cue


@dataclass(frozen=True)
class Rulers:
    """People as vertical rulers: upright frames' mid-ankle (on the floor) and thorax pixels,
    who they are, and each person's median image axis length (px, to normalise residuals)."""

    foot: np.ndarray  # (N, 2) px
    top: np.ndarray  # (N, 2) px
    person: np.ndarray  # (N,) 0..persons-1
    length: np.ndarray  # (N,) px

    @property
    def persons(self) -> int:
        return int(self.person.max()) + 1 if self.person.size else 0


def ruler_points(
    keypoints: list[np.ndarray],
    scores: list[np.ndarray],
    cams: list[np.ndarray] | None = None,
    min_frames: int = RULER_MIN_FRAMES,
    image_upright: bool = True,
) -> Rulers:
    """The upright image axes of every person with at least min_frames of them."""
    foot, top, who, length = [], [], [], []
    for a, b in upright_axes(keypoints, scores, cams=cams, image_upright=image_upright):
        if len(a) < min_frames:
            continue
        foot.append(a)
        top.append(b)
        who.append(np.full(len(a), len(length)))
        length.append(np.full(len(a), np.median(np.linalg.norm(b - a, axis=-1))))
    if not foot:
        e = np.zeros((0, 2))
        return Rulers(e, e, np.zeros(0, np.int64), np.zeros(0))
    cat = np.concatenate
    return Rulers(cat(foot), cat(top), cat(who), cat(length))


def _ruler_residuals(prm: np.ndarray, r: Rulers, focal: float, c: np.ndarray) -> np.ndarray:
    """(2N,) image residuals (in axis lengths) of the thorax predicted for an up (pitch, roll
    in prm[:2], radians) and per-person log(axis height / camera height) prm[2:]: the foot's
    ray meets the floor, the thorax stands that high above it along up."""
    from hgmamba_core.world.frame import up_from_pitch_roll

    n = up_from_pitch_roll(np.degrees(prm[0]), np.degrees(prm[1]))
    rise = np.exp(prm[2:])[r.person]
    ray = np.concatenate([(r.foot - c) / focal, np.ones((len(r.foot), 1))], 1)
    below = -(ray @ n)
    bad = below <= 1e-3  # the foot at or above the horizon: cannot stand on this floor
    floor_pt = ray / np.where(bad, 1.0, below)[:, None]
    top = floor_pt + rise[:, None] * n
    z = np.maximum(top[:, 2], 1e-3)
    res = (focal * top[:, :2] / z[:, None] + c - r.top) / r.length[:, None]
    res[bad | (top[:, 2] <= 1e-3)] = 1.0
    return res.ravel()


def ruler_info(
    r: Rulers,
    size: tuple[int, int],
    focal: float,
    up0: np.ndarray,
    fps: float,
    iters: int = 12,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(3x3 information on up, the rulers' own up or None) from people standing upright.

    A person of constant size whose image axis shrinks and rises as they walk away tells the
    floor's tilt (the horizon) without any 3D: each upright frame's mid-ankle is on the floor,
    the thorax a fixed (per person, unknown) height above it along up. Robust Gauss-Newton
    (Tukey weights) from up0 over pitch, roll and the per-person heights; the information is
    the pitch/roll block with the heights marginalised, each person's frames counted as one
    observation per half second (like vertical_info), as a quadratic form on the unit vector.
    """
    from hgmamba_core.world.frame import pitch_roll_from_up, up_from_pitch_roll

    if r.persons == 0:
        return np.zeros((3, 3)), None
    c = np.array([size[0] / 2.0, size[1] / 2.0])
    pitch, roll = pitch_roll_from_up(up0)
    prm = np.concatenate([np.radians([pitch, roll]), np.zeros(r.persons)])
    # each person's height ratio: the best of a coarse grid at the starting up
    for p in range(r.persons):
        grid = np.log(np.geomspace(0.02, 3.0, 30))
        cost = []
        for g in grid:
            trial = prm.copy()
            trial[2 + p] = g
            res = _ruler_residuals(trial, r, focal, c).reshape(-1, 2)[r.person == p]
            cost.append(np.median(np.abs(res)))
        prm[2 + p] = grid[int(np.argmin(cost))]
    per = np.bincount(r.person)
    eff = (np.maximum(1.0, per / max(0.5 * fps, 1.0)) / np.maximum(per, 1))[r.person]
    eff = np.repeat(eff, 2)
    A = np.eye(len(prm))
    s = 1.0
    for _ in range(iters):
        res = _ruler_residuals(prm, r, focal, c)
        s = max(1.4826 * float(np.median(np.abs(res))), 0.01)
        u = res / (4.685 * s)
        w = np.where(np.abs(u) < 1, (1 - u * u) ** 2, 0.0)
        J = np.empty((res.size, prm.size))
        for j in range(prm.size):
            d = np.zeros(prm.size)
            d[j] = 1e-6
            J[:, j] = (_ruler_residuals(prm + d, r, focal, c) - res) / 1e-6
        A = (J * w[:, None]).T @ J
        step = np.linalg.solve(A + 1e-9 * np.eye(prm.size), -(J * w[:, None]).T @ res)
        step[:2] = np.clip(step[:2], -0.2, 0.2)
        prm = prm + step
        if np.abs(step).max() < 1e-6:
            break
    res = _ruler_residuals(prm, r, focal, c)
    u = res / (4.685 * s)
    w = eff * np.where(np.abs(u) < 1, (1 - u * u) ** 2, 0.0)
    A = (J * w[:, None]).T @ J / (s * s)
    a, b, d = A[:2, :2], A[:2, 2:], A[2:, 2:]
    info2 = a - b @ np.linalg.solve(d + 1e-9 * np.eye(len(d)), b.T)
    n = up_from_pitch_roll(np.degrees(prm[0]), np.degrees(prm[1]))
    eps = 1e-6
    T = np.stack(
        [
            (up_from_pitch_roll(np.degrees(prm[0] + eps), np.degrees(prm[1])) - n) / eps,
            (up_from_pitch_roll(np.degrees(prm[0]), np.degrees(prm[1] + eps)) - n) / eps,
        ],
        axis=1,
    )
    Tp = np.linalg.pinv(T)  # (2, 3): unit-vector change -> (pitch, roll) change
    return Tp.T @ info2 @ Tp, n


def vertical_info(v: Verticals, up: np.ndarray, fps: float, iters: int = 3) -> np.ndarray:
    """3x3 information on up from the 2D verticals (robust: Tukey weights on u . m), with
    each person's frames counted as one observation per half second (their sway is slow)."""
    if v.count == 0:
        return np.zeros((3, 3))
    m = v.normals
    per = np.bincount(v.person)
    eff = np.maximum(1.0, per / max(0.5 * fps, 1.0)) / np.maximum(per, 1)
    w0 = eff[v.person]
    u = unit(up)
    info = np.zeros((3, 3))
    for _ in range(iters):
        r = m @ u
        sc = max(1.4826 * float(np.median(np.abs(r))), 0.02)
        z = r / (4.685 * sc)
        w = w0 * np.where(np.abs(z) < 1, (1 - z * z) ** 2, 0.0)
        info = (w[:, None] * m).T @ m / VERTICAL_SIGMA_RAD**2
        lam, vec = np.linalg.eigh(info)
        cand = vec[:, 0] if vec[:, 0] @ u >= 0 else -vec[:, 0]
        if lam[1] > 4 * max(lam[0], 1e-9):  # a well-defined vanishing direction: follow it
            u = cand
    return info


def obs_per_point(feet: StanceFeet) -> float:
    """Independent observations per stance point: one per stance run."""
    return float(np.unique(feet.segment).size) / max(feet.count, 1)


def bootstrap_floor(
    feet: StanceFeet,
    prior: np.ndarray,
    prior_sigma_deg: float,
    reps: int = 24,
    seed: int = 0,
    per_person: bool = True,
    extra_info: np.ndarray | None = None,
) -> tuple[float, float]:
    """(gravity std in degrees, height std in metres) by resampling whole stance runs."""
    segs = np.unique(feet.segment)
    if segs.size < 3:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    opp = obs_per_point(feet)
    grp = feet.person if per_person else None
    base = fit_floor(feet.points, prior, prior_sigma_deg, 10, None, opp, grp, extra_info)
    angs, hs = [], []
    for _ in range(reps):
        pick = rng.choice(segs, size=segs.size, replace=True)
        counts = np.bincount(np.searchsorted(segs, pick), minlength=segs.size)
        w = counts[np.searchsorted(segs, feet.segment)].astype(np.float64)
        f = fit_floor(feet.points, prior, prior_sigma_deg, 4, w, opp, grp, extra_info)
        angs.append(angle_deg(f.normal, base.normal))
        hs.append(f.height_m)
    return float(np.sqrt(np.mean(np.square(angs)))), float(np.std(hs))
