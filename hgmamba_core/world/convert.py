"""Camera-frame lifted poses -> one shared world (z up, floor z = 0) for every person.

Per person: rescale to the average adult, place the root by projecting onto the 2D (one
pinhole camera for all). Then, once for the clip: the floor and gravity (estimate.py), the
camera height, and a per-person, per-frame depth correction so that everybody's lowest ankle
lands on that one floor (a person's absolute size and distance are one unknown along the camera
rays; the shared floor fixes it). `--camera-height` gives the metric scale of the whole scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hgmamba_core.skeleton import H36M_ROOT
from hgmamba_core.world.estimate import (
    DEFAULT_TILT_DEG,
    PRIOR_SIGMA_DEG,
    CameraEstimate,
    make_estimate,
    solve_floor,
)
from hgmamba_core.world.floor import (
    ANKLE_ABOVE_FLOOR_M,
    ruler_points,
    upright_mask,
    vertical_lines,
)
from hgmamba_core.world.frame import (
    H36M_MEAN_STANDING_HEIGHT_M,
    moving_average,
    reorient_to_2d,
    rescale_to_height,
    rotation_from_up,
    solve_translation,
)

_ANKLES = (3, 6)
SCALE_RANGE = (0.5, 2.0)  # per-person depth corrections are clipped to this
OUTLIER_WINDOW_S = 1.0  # contact factors are tested against their running median
OUTLIER_MADS = 3.0  # ... and dropped beyond this many MADs of it,
OUTLIER_MIN_LOG = 0.1  # but never within 10 % of it (a steady walk has a tiny MAD)
MIN_PERSON_STANCE = 10
REORIENT_UPRIGHT_DEG = 20.0  # the lifted body's own angles, frames the rotation is fitted on
# chosen on bench/world.py (end to end, seeds 0 and 100; see the README's Measured table)
PLANE_SIGMA_DEG = 10.0  # the lifted feet's floor fit: 9-14 degrees off end to end (median)
RULER_WEIGHT = 0.2  # the rulers' information, discounted (their own fit is 2-20 degrees off)
CONTACT_SMOOTH_FRAMES = 3  # bench/world.py, stance contact: 1, 3, 7 gave drift 0.05, 0.05, 0.06 m


@dataclass(frozen=True)
class WorldConfig:
    """Assumptions and user choices of the camera -> world conversion.

    tilt_deg: "auto" (estimate from the clip) or degrees looking down (then roll_deg is used).
    camera_height_m: known height of the camera above the floor (sets the scene's scale).
    focal_px: None = max(width, height), described by focal_source.
    """

    tilt_deg: float | str = "auto"
    roll_deg: float = 0.0
    camera_height_m: float | None = None
    place_root: bool = True  # False: every root stays above the origin (no camera geometry)
    focal_px: float | None = None
    focal_source: str = ""
    standing_height_m: float | None = H36M_MEAN_STANDING_HEIGHT_M  # None: keep the model's scale
    root_smooth_frames: int = 5
    floor_percentile: float = 5.0
    prior_sigma_deg: float = PRIOR_SIGMA_DEG
    use_verticals: bool = True  # the people's image axes as evidence on up
    use_floor: bool = True  # the stance feet's plane as evidence on up
    # each lifted person turned so that they reproject best onto the 2D (frame.reorient_to_2d)
    reorient: bool = True
    # the floor plane's tilt from the lifted feet is never surer than this (0: no cap)
    plane_sigma_deg: float = PLANE_SIGMA_DEG
    # people of constant size as vertical rulers (floor.ruler_info)
    ruler_weight: float = RULER_WEIGHT
    # the rulers also with a guessed focal length (fitted with the guess): without them a walk
    # in depth grew by 54 % on vtest.avi (bench/demo_world.py: 32 % with them), and on
    # bench/world.py's guessed-focal rows gravity and camera height improve (README)
    rulers_guessed_focal: bool = True
    ruler_image_upright: bool = False  # True: rulers only where the 2D looks upright too
    same_floor: bool = True  # per-person (per stance) depth correction onto the shared floor
    # which frames' lowest ankle is put on the floor: "stance", "upright" or "all" (a short
    # median filter keeps brief flight phases; jumps longer than ~0.2 s are flattened)
    contact: str = "all"
    contact_range: tuple[float, float] = SCALE_RANGE  # per-frame depth factors are clipped to this
    contact_outlier_s: float = OUTLIER_WINDOW_S  # 0: outliers against the clip-wide median


@dataclass(frozen=True)
class WorldResult:
    """World joints (F, P, 17, 3) float32 and the camera they are consistent with."""

    joints: np.ndarray
    camera: CameraEstimate


def parse_tilt(text: str | float) -> float | str:
    """'auto' or a number of degrees (CLI --tilt)."""
    if isinstance(text, str) and text.strip().lower() == "auto":
        return "auto"
    v = float(text)
    if not np.isfinite(v) or not -90.0 <= v <= 90.0:
        raise ValueError(f"tilt must be 'auto' or degrees in [-90, 90], got {text!r}")
    return v


def camera_frame_people(
    rel_cam: np.ndarray,
    keypoints_px: np.ndarray,
    scores: np.ndarray,
    size: tuple[int, int],
    cfg: WorldConfig,
    focal: float,
) -> list[np.ndarray]:
    """Per person (F, 17, 3): scaled root-relative pose + placed root, camera frame, metres."""
    out = []
    for p in range(rel_cam.shape[1]):
        rel = rel_cam[:, p] - rel_cam[:, p, H36M_ROOT : H36M_ROOT + 1]
        if cfg.standing_height_m:
            rel = rescale_to_height(rel, cfg.standing_height_m)
        if cfg.reorient and cfg.place_root:
            up_fr = upright_mask(rel, max_deg=REORIENT_UPRIGHT_DEG)
            rel, _ = reorient_to_2d(
                rel, keypoints_px[:, p], scores[:, p], size, focal, frames=up_fr
            )
        if cfg.place_root:
            t = solve_translation(rel, keypoints_px[:, p], scores[:, p], size, focal)
            rel = rel + moving_average(t, cfg.root_smooth_frames)[:, None, :]
        out.append(rel)
    return out


def _running_median(x: np.ndarray, k: int) -> np.ndarray:
    """Centred running median (odd window k, shrinking symmetrically at the ends, so that a
    trend is followed to the last frame instead of flattened there)."""
    n = len(x)
    rad = [min(k // 2, i, n - 1 - i) for i in range(n)]
    return np.array([np.median(x[i - r : i + r + 1]) for i, r in enumerate(rad)])


def contact_scale(
    cam: np.ndarray,
    up: np.ndarray,
    height: float,
    frames: np.ndarray,
    percentile: float = 5.0,
    fps: float = 25.0,
    scale_range: tuple[float, float] = SCALE_RANGE,
    outlier_window_s: float = OUTLIER_WINDOW_S,
) -> tuple[np.ndarray, str]:
    """(F,) depth factors that put this person's stance ankle on the floor, and a note.

    Scaling a person about the camera centre keeps their 2D projection, so it is free: with
    stance frames, every stance frame gets the factor that lands its lowest ankle
    ANKLE_ABOVE_FLOOR_M above the floor (outliers dropped, interpolated between stances,
    smoothed over ~0.5 s); without, one factor from the lowest ankle's percentile.
    """
    F = cam.shape[0]
    d = -(cam[:, list(_ANKLES)] @ up)  # ankles' distance below the camera
    low = np.fmax(d[:, 0], d[:, 1])
    target = height - ANKLE_ABOVE_FLOOR_M
    ok_low = low[np.isfinite(low)]
    if target <= 0.05 or not ok_low.size:
        return np.ones(F), ""
    if frames.size >= MIN_PERSON_STANCE:
        frames = frames[np.isfinite(low[frames]) & (low[frames] > 0.05)]
    if frames.size >= MIN_PERSON_STANCE:
        logk = np.log(target / low[frames])
        med = np.median(logk)
        # outliers against the factor's local level (~1 s), not its clip-wide median: under a
        # slightly wrong floor the factor trends with depth, and a global test cuts the ends
        # of a walk off (the demo: the ankles then float 0.2-0.6 m there)
        if outlier_window_s > 0:
            loc = _running_median(logk, max(5, int(round(outlier_window_s * fps)) | 1))
        else:  # the clip-wide median (the rule before 2026-12-01)
            loc = np.full_like(logk, med)
        mad = 1.4826 * np.median(np.abs(logk - loc)) + 1e-3
        keep = np.abs(logk - loc) <= max(OUTLIER_MADS * mad, OUTLIER_MIN_LOG)
        f, lk = frames[keep], logk[keep]
        lk = _running_median(lk, max(3, int(round(0.2 * fps)) | 1))
        k = np.exp(np.interp(np.arange(F), f, lk))
        k = moving_average(k[:, None], CONTACT_SMOOTH_FRAMES)[:, 0]
        k = np.where(np.isfinite(k), k, np.exp(med))
    else:
        k = np.full(F, target / np.percentile(ok_low, 100 - percentile))
    med_k = float(np.median(k))
    note = ""
    if not scale_range[0] <= med_k <= scale_range[1]:
        note = f"depth correction {med_k:.2f} clipped to {scale_range}: not on the floor"
    return np.clip(k, *scale_range), note


def place_in_world(
    rel_cam: np.ndarray,
    keypoints_px: np.ndarray,
    scores: np.ndarray,
    size: tuple[int, int],
    cfg: WorldConfig | None = None,
    fps: float = 25.0,
) -> WorldResult:
    """(F, P, 17, 3) camera-frame poses + their 2D -> one world for all and the camera estimate.

    keypoints_px (F, P, 17, 2) and scores (F, P, 17) are the 2D the poses were lifted from.
    """
    cfg = cfg or WorldConfig()
    rel_cam = np.asarray(rel_cam, dtype=np.float64)
    F, P = rel_cam.shape[:2]
    focal = float(cfg.focal_px or max(size))
    source = cfg.focal_source or ("given" if cfg.focal_px else "default max(w, h)")
    cams = camera_frame_people(rel_cam, keypoints_px, scores, size, cfg, focal)
    conf = [np.nan_to_num(scores[:, p][:, list(_ANKLES)], nan=0.0) for p in range(P)]
    if not cfg.place_root:  # no camera geometry: fixed tilt, each person floored on their own
        return _legacy_world(cams, cfg, focal, source, F)
    kps = [np.asarray(keypoints_px[:, p], np.float64) for p in range(P)]
    verts, rulers = None, None
    sc_list = [scores[:, p] for p in range(P)]
    if cfg.use_verticals:
        verts = vertical_lines(kps, sc_list, size, focal, cams=cams)
    if cfg.ruler_weight > 0:
        rulers = ruler_points(kps, sc_list, cams=cams, image_upright=cfg.ruler_image_upright)
    sol = solve_floor(
        cams, conf, fps, kps, tilt_deg=cfg.tilt_deg, roll_deg=cfg.roll_deg,
        prior_sigma_deg=cfg.prior_sigma_deg, floor_percentile=cfg.floor_percentile,
        verticals=verts, use_floor=cfg.use_floor, rulers=rulers,
        ruler_weight=cfg.ruler_weight, rulers_any_focal=cfg.rulers_guessed_focal,
        image=(size, focal), plane_sigma_deg=cfg.plane_sigma_deg,
        vertical_pitch=cfg.focal_px is not None and not source.startswith("default"),
    )  # fmt: skip
    up, height = sol.up_cam, sol.height_m
    notes: list[str] = []
    if not np.isfinite(height):
        height = 1.6
        notes.append("no ankle seen: camera height assumed 1.6 m")
    scene = 1.0
    if cfg.camera_height_m is not None:
        if height > 0.05:
            scene = float(cfg.camera_height_m) / height
        height = float(cfg.camera_height_m)
        notes.append(f"camera height {height:g} m given: scene scaled by {scene:.2f}")
    scales = []
    R = rotation_from_up(up)
    out = np.full(rel_cam.shape, np.nan, dtype=np.float32)
    for p, cam in enumerate(cams):
        k = np.ones(F)
        if cfg.same_floor:
            frames = sol.feet.frame[sol.feet.person == p]
            if cfg.contact == "upright":  # the lowest ankle of any upright frame is on the floor
                frames = np.union1d(frames, np.flatnonzero(upright_mask(cam, max_deg=35.0)))
            elif cfg.contact == "all":  # ... of any frame (walking, standing, sitting, lying)
                frames = np.flatnonzero(np.isfinite(cam[:, list(_ANKLES)]).all((1, 2)))
            k, note = contact_scale(
                cam, up, height / scene, frames, cfg.floor_percentile, fps,
                cfg.contact_range, cfg.contact_outlier_s,
            )  # fmt: skip
            if note:
                notes.append(f"person {p}: {note}")
        s = scene * k
        scales.append(round(float(np.median(s)), 4))
        world = (s[:, None, None] * cam) @ R.T
        world[..., 2] += height
        out[:, p] = world.astype(np.float32)
    est = make_estimate(sol, focal, source, P, tuple(scales), height, tuple(notes))
    return WorldResult(out, est)


def _legacy_world(
    cams: list[np.ndarray], cfg: WorldConfig, focal: float, source: str, F: int
) -> WorldResult:
    """Roots above the origin: rotate by the given (or default) tilt, floor each person."""
    from hgmamba_core.world.frame import camera_to_world_rotation, pitch_roll_from_up

    tilt = DEFAULT_TILT_DEG if isinstance(cfg.tilt_deg, str) else float(cfg.tilt_deg)
    R = camera_to_world_rotation(tilt, cfg.roll_deg)
    out = np.full((F, len(cams), 17, 3), np.nan, dtype=np.float32)
    for p, cam in enumerate(cams):
        world = cam @ R.T
        low = np.fmin(world[:, _ANKLES[0], 2], world[:, _ANKLES[1], 2])
        low = low[np.isfinite(low)]
        if low.size:
            world[..., 2] -= np.percentile(low, cfg.floor_percentile) - ANKLE_ABOVE_FLOOR_M
        out[:, p] = world.astype(np.float32)
    pitch, roll = pitch_roll_from_up(R[2])
    est = CameraEstimate(
        pitch_deg=pitch, roll_deg=roll, height_m=float("nan"), focal_px=focal,
        focal_source=source, method=f"fixed {tilt:g}° tilt, roots not placed", persons=len(cams),
        up_cam=tuple(float(v) for v in R[2]),
    )  # fmt: skip
    return WorldResult(out, est)


def to_world(
    rel_cam: np.ndarray,
    keypoints_px: np.ndarray,
    scores: np.ndarray,
    size: tuple[int, int],
    cfg: WorldConfig | None = None,
    fps: float = 25.0,
) -> np.ndarray:
    """(F, P, 17, 3) camera-frame root-relative poses -> (F, P, 17, 3) world metres (z up)."""
    return place_in_world(rel_cam, keypoints_px, scores, size, cfg, fps).joints
