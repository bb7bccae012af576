"""Camera-frame lifted poses -> one shared world (z up, floor z = 0) for every person.

Per person: rescale to the average adult, place the root by projecting onto the 2D (one
pinhole camera for all). Then, once for the clip: the floor and gravity (estimate.py), the
camera height, and a per-person depth correction so that everybody's stance feet land on that
one floor (a person's absolute size and distance are one unknown along the camera rays; the
shared floor fixes it). `--camera-height` gives the metric scale of the whole scene.
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
from hgmamba_core.world.floor import ANKLE_ABOVE_FLOOR_M
from hgmamba_core.world.frame import (
    H36M_MEAN_STANDING_HEIGHT_M,
    moving_average,
    rescale_to_height,
    rotation_from_up,
    solve_translation,
)

_ANKLES = (3, 6)
SCALE_RANGE = (0.7, 1.4)  # per-person depth corrections outside this are not applied
MIN_PERSON_STANCE = 10


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
    same_floor: bool = True  # per-person depth correction onto the shared floor


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
        if cfg.place_root:
            t = solve_translation(rel, keypoints_px[:, p], scores[:, p], size, focal)
            rel = rel + moving_average(t, cfg.root_smooth_frames)[:, None, :]
        out.append(rel)
    return out


def _person_floor_height(cam: np.ndarray, up: np.ndarray, frames: np.ndarray, pct: float) -> float:
    """This person's feet's distance below the camera along up (stance frames if given)."""
    d = -(cam[:, list(_ANKLES)] @ up)
    h = np.fmax(d[:, 0], d[:, 1])
    h = h[frames] if frames.size >= MIN_PERSON_STANCE else h
    h = h[np.isfinite(h)]
    if not h.size:
        return float("nan")
    stat = np.median(h) if frames.size >= MIN_PERSON_STANCE else np.percentile(h, 100 - pct)
    return float(stat) + ANKLE_ABOVE_FLOOR_M


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
    sol = solve_floor(
        cams, conf, fps, cfg.tilt_deg, cfg.roll_deg, cfg.prior_sigma_deg, cfg.floor_percentile
    )
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
        s = scene
        if cfg.same_floor and P > 1:
            frames = sol.feet.frame[sol.feet.person == p]
            hp = _person_floor_height(cam, up, frames, cfg.floor_percentile)
            k = height / (hp * scene) if np.isfinite(hp) and hp > 0.05 else 1.0
            if SCALE_RANGE[0] <= k <= SCALE_RANGE[1]:
                s *= k
            elif np.isfinite(k):
                notes.append(f"person {p}: depth correction {k:.2f} out of range, not applied")
        scales.append(round(float(s), 4))
        world = (s * cam) @ R.T
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
