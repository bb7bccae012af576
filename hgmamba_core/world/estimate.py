"""The camera of a clip, estimated from the people in it: pitch, roll, height, with a method
and an uncertainty that travel on as a `CameraEstimate` (into pose3d.json and the summary).

Rule (chosen on bench/world.py, see the README): world up is the maximum a-posteriori unit
vector under three cues: the robust floor plane through the stance ankles (when there are
enough stance frames covering enough floor), the people's 2D verticals (their pitch part only
when the focal length is known, not guessed), and the body-up prior of the lifted poses (std
PRIOR_SIGMA_DEG; dropped when it contradicts the 2D verticals or is implausible, the default
tilt with std DEFAULT_PRIOR_SIGMA_DEG taking its place). With no upright frame and no vertical
at all, or an implausible result, the fixed default tilt. The height is the floor's distance
from the camera along up. The gravity uncertainty is the larger of a block bootstrap over stance
runs and half the spread between the fused normal and the cues alone (floor only, prior): when
the cues disagree, the estimate is that uncertain.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from hgmamba_core.world.floor import (
    ANKLE_ABOVE_FLOOR_M,
    Rulers,
    StanceFeet,
    Verticals,
    _map_normal,
    angle_deg,
    body_up_prior,
    bootstrap_floor,
    fit_floor,
    obs_per_point,
    ruler_info,
    stance_feet,
    unit,
    vertical_info,
)
from hgmamba_core.world.frame import pitch_roll_from_up, up_from_pitch_roll

DEFAULT_TILT_DEG = 10.0  # the fallback when nothing in the clip says where up is
PRIOR_SIGMA_DEG = 4.0  # body-up prior std (H36M GT: median trunk lean 3-5 degrees)
MIN_STANCE_FRAMES = 30
MIN_STANCE_RUNS = 3
MIN_VERTICALS = 10  # upright person-frames with a confident image axis
DEFAULT_PRIOR_SIGMA_DEG = 20.0  # the default tilt as a prior, when the body-up one is missing
MAX_FROM_DEFAULT_DEG = 70.0  # estimates of up further from the default tilt's are rejected
PRIOR_REJECT_CHI2 = 25.0  # body-up prior vs the image axes: excess residual (5 sigma) to drop it
MIN_FLOOR_SPREAD_M = 0.15  # the stance feet must cover this much floor (std) along 2 axes


@dataclass(frozen=True)
class CameraEstimate:
    """Where the camera is relative to the floor, and how that was decided.

    pitch: degrees looking down; roll: degrees, positive when the image's right side points
    below the horizon; height: metres above the floor. `up_cam` is world up in camera
    coordinates (x right, y down, z forward).
    """

    pitch_deg: float
    roll_deg: float
    height_m: float
    focal_px: float
    focal_source: str
    method: str
    stance_frames: int = 0
    stance_persons: int = 0
    persons: int = 0
    gravity_std_deg: float = float("nan")
    height_std_m: float = float("nan")
    floor_vs_body_up_deg: float = float("nan")  # consistency of the two cues
    vertical_vs_body_up_deg: float = float("nan")  # the 2D verticals' up vs the body-up prior
    up_cam: tuple[float, float, float] = (0.0, -1.0, 0.0)
    person_scale: tuple[float, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        """One line for the lift summary."""
        how = self.method
        if self.stance_frames:
            ppl = "person" if self.stance_persons == 1 else "people"
            how += f" on {self.stance_frames} stance frames of {self.stance_persons} {ppl}"
        unc = []
        if math.isfinite(self.gravity_std_deg):
            unc.append(f"±{self.gravity_std_deg:.1f}°")
        if math.isfinite(self.height_std_m):
            unc.append(f"±{self.height_std_m:.2f} m")
        if math.isfinite(self.floor_vs_body_up_deg):
            unc.append(f"floor vs body-up {self.floor_vs_body_up_deg:.1f}°")
        extra = f"; {', '.join(unc)}" if unc else ""
        return (
            f"camera: {self.pitch_deg:.0f}° down, {self.roll_deg:.0f}° roll, "
            f"{self.height_m:.1f} m above the floor ({how}{extra}); "
            f"focal {self.focal_px:.0f} px ({self.focal_source})"
        )

    def to_dict(self) -> dict:
        """JSON-ready (NaN -> None)."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = None
            elif isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> CameraEstimate:
        kw = {}
        for k, f in cls.__dataclass_fields__.items():
            if k not in d:
                continue
            v = d[k]
            if v is None and f.type in ("float", float):
                v = float("nan")
            elif isinstance(v, list):
                v = tuple(v)
            kw[k] = v
        return cls(**kw)


@dataclass(frozen=True)
class FloorSolution:
    """The floor in camera coordinates: up normal and camera height, plus the evidence."""

    up_cam: np.ndarray
    height_m: float
    method: str
    feet: StanceFeet
    gravity_std_deg: float = float("nan")
    height_std_m: float = float("nan")
    floor_vs_body_up_deg: float = float("nan")
    notes: tuple[str, ...] = ()
    vertical_vs_body_up_deg: float = float("nan")


def _fallback_height(cams: list[np.ndarray], up: np.ndarray, percentile: float) -> float:
    """Camera height from every frame's lowest ankle (no stance frames to trust)."""
    lows = []
    for cam in cams:
        h = -(cam[:, [3, 6]] @ up)  # distance below the camera
        lows.append(np.fmax(h[:, 0], h[:, 1]))
    low = np.concatenate(lows) if lows else np.zeros(0)
    low = low[np.isfinite(low)]
    if not low.size:
        return float("nan")
    return float(np.percentile(low, 100.0 - percentile)) + ANKLE_ABOVE_FLOOR_M


def _floor_height(feet: StanceFeet, cams, up, pct: float, per_person: bool) -> float:
    """Camera height along a given up: the stance feet's plane, else the lowest ankles."""
    if feet.count >= 3:
        grp = feet.person if per_person else None
        return fit_floor(feet.points, up, float("inf"), groups=grp).height_m
    return _fallback_height(cams, up, pct)


def _solve_floor(
    cams: list[np.ndarray],
    ankle_conf: list[np.ndarray],
    fps: float,
    keypoints: list[np.ndarray] | None = None,
    tilt_deg: float | str = "auto",
    roll_deg: float = 0.0,
    prior_sigma_deg: float = PRIOR_SIGMA_DEG,
    floor_percentile: float = 5.0,
    per_person: bool = True,
    verticals: Verticals | None = None,
    use_floor: bool = True,
    vertical_pitch: bool = True,
    rulers: Rulers | None = None,
    ruler_weight: float = 0.0,
    rulers_any_focal: bool = False,
    image: tuple[tuple[int, int], float] | None = None,
    plane_sigma_deg: float = 0.0,
) -> FloorSolution:
    """World up and the camera height from camera-frame people (see the module docstring).

    cams: per person (F, 17, 3) metres in the camera frame (roots placed); ankle_conf: per
    person (F, 2) 2D scores of the right and left ankle; keypoints: per person (F, 17, 2) px;
    verticals: the people's image axes (floor.vertical_lines), None to leave them out;
    vertical_pitch: False when the focal length is a guess (their roll still counts);
    rulers_any_focal: the rulers count even then, fitted with the guess (their pitch is then
    off with the focal length, but their floor keeps a walking person one size).
    """
    notes: list[str] = []
    if not isinstance(tilt_deg, str):
        up = up_from_pitch_roll(float(tilt_deg), roll_deg)
        feet = stance_feet(cams, ankle_conf, up, fps, keypoints)
        h = _floor_height(feet, cams, up, floor_percentile, per_person)
        return FloorSolution(up, h, f"fixed {tilt_deg:g}° tilt", feet)
    prior, _ = body_up_prior(cams)
    default = up_from_pitch_roll(DEFAULT_TILT_DEG, 0.0)
    if prior is not None and angle_deg(prior, default) > MAX_FROM_DEFAULT_DEG:
        notes.append(
            f"the body-up prior says {pitch_roll_from_up(prior)[0]:.0f}° down: implausible, not used"
        )
        prior = None
    have_v = verticals is not None and verticals.count >= MIN_VERTICALS
    vinfo = vertical_info(verticals, default if prior is None else prior, fps) if have_v else None
    if vinfo is not None and not vertical_pitch:
        # with a guessed focal length the image axes' convergence (pitch) means little; their
        # common tilt (roll) does not depend on it: keep that only
        ex = np.array([1.0, 0.0, 0.0])
        vinfo = float(ex @ vinfo @ ex) * np.outer(ex, ex)
    v_vs_prior = float("nan")
    if prior is not None and vinfo is not None:
        # the prior must agree with the image axes where they are informative
        weak = 1.0 / np.deg2rad(DEFAULT_PRIOR_SIGMA_DEG) ** 2
        u_v = _map_normal(vinfo, prior, weak)
        v_vs_prior = angle_deg(u_v, prior)
        excess = float(prior @ vinfo @ prior - u_v @ vinfo @ u_v)
        if excess > PRIOR_REJECT_CHI2:
            notes.append(
                f"the body-up prior is {v_vs_prior:.0f}° from the people's image axes: not used"
            )
            prior = None
    if prior is None and vinfo is None:
        up = default
        n_up = verticals.count if verticals is not None else 0
        seen = (
            f"only {n_up} upright person-frames ({MIN_VERTICALS} needed)"
            if n_up
            else "no upright frame"
        )
        notes.append(f"{seen}: assumed the default {DEFAULT_TILT_DEG:g}° tilt")
        feet = stance_feet(cams, ankle_conf, up, fps, keypoints)
        h = _floor_height(feet, cams, up, floor_percentile, per_person)
        return FloorSolution(up, h, f"fixed {DEFAULT_TILT_DEG:g}° tilt", feet, notes=tuple(notes))
    if prior is None:  # the image axes with a weak default for what they leave open
        prior, sigma_p, cues = default, DEFAULT_PRIOR_SIGMA_DEG, [f"{DEFAULT_TILT_DEG:g}° default"]
    else:
        sigma_p, cues = prior_sigma_deg, ["body-up prior"]
    prior_sigma_deg = sigma_p
    if not np.isfinite(prior_sigma_deg):
        pw = 1e12  # the prior alone
    elif prior_sigma_deg <= 0:
        pw = 1e-6  # no prior: it only breaks ties
    else:
        pw = 1.0 / np.deg2rad(prior_sigma_deg) ** 2
    if vinfo is None:
        vinfo = np.zeros((3, 3))
    else:
        cues.insert(0, "2D verticals")
    up0 = _map_normal(vinfo, prior, pw) if pw < 1e12 else prior
    if (
        rulers is not None
        and rulers.persons
        and ruler_weight > 0
        and image
        and (vertical_pitch or rulers_any_focal)
    ):
        rinfo, _ = ruler_info(rulers, image[0], image[1], up0, fps)
        vinfo = vinfo + ruler_weight * rinfo
        cues.insert(0, "people as rulers")
        up0 = _map_normal(vinfo, prior, pw) if pw < 1e12 else prior
    if not use_floor:
        feet = stance_feet(cams, ankle_conf, up0, fps, keypoints)
        h = _floor_height(feet, cams, up0, floor_percentile, per_person)
        return FloorSolution(
            unit(up0), h, " + ".join(cues), feet, notes=tuple(notes),
            vertical_vs_body_up_deg=v_vs_prior,
        )  # fmt: skip
    feet = stance_feet(cams, ankle_conf, up0, fps, keypoints)
    runs = int(np.unique(feet.segment).size)
    if feet.count < MIN_STANCE_FRAMES or runs < MIN_STANCE_RUNS:
        if feet.count:
            notes.append(f"only {feet.count} stance frames ({runs} stance runs): floor not fitted")
        else:
            notes.append("no stance frame (feet unseen, moving or not upright): floor not fitted")
        h = _floor_height(feet, cams, up0, floor_percentile, per_person)
        return FloorSolution(
            unit(up0),
            h,
            " + ".join(cues),
            feet,
            notes=tuple(notes),
            vertical_vs_body_up_deg=v_vs_prior,
        )
    grp = feet.person if per_person else None
    sigma = prior_sigma_deg
    fit = None
    for _ in range(2):  # refit once with the lowest ankle and the stance test along the new up
        grp = feet.person if per_person else None
        opp = obs_per_point(feet)
        fit = fit_floor(
            feet.points, prior, sigma, obs_per_point=opp, groups=grp, extra_info=vinfo,
            plane_sigma_deg=plane_sigma_deg,
        )  # fmt: skip
        feet2 = stance_feet(cams, ankle_conf, fit.normal, fps, keypoints)
        if feet2.count < MIN_STANCE_FRAMES:
            break
        feet = feet2
    assert fit is not None
    grp = feet.person if per_person else None
    alone = fit_floor(feet.points, prior, 0.0, groups=grp)
    if min(fit.spread_m) < MIN_FLOOR_SPREAD_M:
        notes.append(
            f"the stance feet cover too little floor ({min(fit.spread_m):.2f} m across): "
            f"up from the {' and '.join(cues)}, height from the feet"
        )
        h = _floor_height(feet, cams, up0, floor_percentile, per_person)
        return FloorSolution(
            unit(up0), h, " + ".join(cues), feet, notes=tuple(notes),
            vertical_vs_body_up_deg=v_vs_prior,
        )  # fmt: skip
    g_std, h_std = bootstrap_floor(feet, prior, sigma, per_person=per_person, extra_info=vinfo)
    spread = max(angle_deg(fit.normal, alone.normal), angle_deg(fit.normal, prior))
    g_std = float(np.nanmax([g_std, 0.5 * spread]))
    return FloorSolution(
        unit(fit.normal), fit.height_m, " + ".join(["floor fit", *cues]), feet, g_std, h_std,
        angle_deg(alone.normal, prior) if cues[-1] == "body-up prior" else float("nan"),
        tuple(notes), v_vs_prior,
    )  # fmt: skip


def solve_floor(*args, **kwargs) -> FloorSolution:
    """World up and the camera height from camera-frame people (arguments of _solve_floor),
    falling back to the fixed default tilt when the estimate is implausible (a camera looking
    down by more than ~80 degrees, or up): poses lifted from unusual views can be garbage."""
    sol = _solve_floor(*args, **kwargs)
    default = up_from_pitch_roll(DEFAULT_TILT_DEG, 0.0)
    off = angle_deg(sol.up_cam, default)
    if sol.method.startswith("fixed") or off <= MAX_FROM_DEFAULT_DEG:
        return sol
    pitch = pitch_roll_from_up(sol.up_cam)[0]
    kw = dict(kwargs, tilt_deg=DEFAULT_TILT_DEG, roll_deg=0.0)
    fixed = _solve_floor(*args[:4], **kw)  # cams, ankle_conf, fps, keypoints
    note = f"estimate ({sol.method}: {pitch:.0f}° down) implausible: the default {DEFAULT_TILT_DEG:g}° tilt"
    return replace(fixed, notes=(*sol.notes, note))


def make_estimate(
    sol: FloorSolution,
    focal_px: float,
    focal_source: str,
    persons: int,
    person_scale: tuple[float, ...] = (),
    height_m: float | None = None,
    notes: tuple[str, ...] = (),
) -> CameraEstimate:
    """The typed record of a FloorSolution (height_m: the height finally used)."""
    pitch, roll = pitch_roll_from_up(sol.up_cam)
    return CameraEstimate(
        pitch_deg=pitch, roll_deg=roll, height_m=float(sol.height_m if height_m is None else height_m),
        focal_px=float(focal_px), focal_source=focal_source, method=sol.method,
        stance_frames=sol.feet.count, stance_persons=sol.feet.persons if sol.feet.count else 0,
        persons=persons, gravity_std_deg=sol.gravity_std_deg, height_std_m=sol.height_std_m,
        floor_vs_body_up_deg=sol.floor_vs_body_up_deg,
        vertical_vs_body_up_deg=sol.vertical_vs_body_up_deg,
        up_cam=tuple(float(v) for v in sol.up_cam), person_scale=tuple(person_scale),
        notes=sol.notes + tuple(notes),
    )  # fmt: skip
