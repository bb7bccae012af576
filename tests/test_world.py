"""The world frame from the clip itself: floor plane, body-up prior, camera, fallbacks."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest

from hgmamba_core.world import (
    ANKLE_ABOVE_FLOOR_M,
    CameraEstimate,
    WorldConfig,
    camera_to_world_rotation,
    fit_floor,
    parse_tilt,
    pitch_roll_from_up,
    place_in_world,
    rotation_from_up,
    up_from_pitch_roll,
)
from hgmamba_core.world.floor import angle_deg
from hgmamba_core.world.focal import focal_from_tags, resolve_focal

SIZE = (1280, 720)


def _project(
    world: np.ndarray, pitch: float, roll: float, height: float, dist: float,
    focal: float | None = None,
):  # fmt: skip
    """World (F[, P], 17, 3) z-up -> camera-frame 3D and pixels, camera `dist` m behind the
    people's mean position, `height` m above z = 0, yaw 0; focal (px) defaults to lift's guess."""
    centre = np.nanmean(world[..., 0, :].reshape(-1, 3), axis=0)
    c = np.array([centre[0], centre[1] - dist, height])
    R = rotation_from_up(up_from_pitch_roll(pitch, roll))
    cam = (world - c) @ R  # world -> camera (R is camera -> world)
    f = focal or max(SIZE)
    uv = f * cam[..., :2] / cam[..., 2:3] + np.array(SIZE) / 2.0
    return cam, uv


def _lift_input(cam: np.ndarray, uv: np.ndarray):
    """Per-person camera 3D (F, P, 17, 3) made root-relative, with its 2D and unit scores."""
    if cam.ndim == 3:
        cam, uv = cam[:, None], uv[:, None]
    rel = cam - cam[:, :, :1]
    return rel, uv.astype(np.float32), np.ones(uv.shape[:3], np.float32)


def _gravity_error(est: CameraEstimate, pitch: float, roll: float) -> float:
    return angle_deg(np.asarray(est.up_cam), up_from_pitch_roll(pitch, roll))


# ------------------------------------------------------------------------- rotations
def test_pitch_roll_round_trip_and_rotation():
    for pitch, roll in [(0, 0), (10, 0), (34, 1), (60, -5), (-5, 3)]:
        up = up_from_pitch_roll(pitch, roll)
        assert np.allclose(pitch_roll_from_up(up), (pitch, roll), atol=1e-9)
        R = rotation_from_up(up)
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-12) and np.isclose(np.linalg.det(R), 1)
        assert np.allclose(R @ up, [0, 0, 1])
    np.testing.assert_allclose(
        camera_to_world_rotation(10.0)[1], [0, -np.sin(0.1745329), np.cos(0.1745329)], atol=1e-6
    )
    assert parse_tilt("auto") == "auto" and parse_tilt("12.5") == 12.5
    with pytest.raises(ValueError):
        parse_tilt("95")


# ------------------------------------------------------------------------- plane fit
def _stance_floor(rng, pitch, roll, height, people=5, frames=60):
    """Ankle points of several people walking on one floor, in camera coordinates."""
    R = rotation_from_up(up_from_pitch_roll(pitch, roll))
    pts, grp = [], []
    for p in range(people):
        start = rng.uniform([-4, 6], [4, 14])
        head = rng.uniform(0, 2 * np.pi)
        s = np.arange(frames)[:, None] * 0.05 * np.array([np.cos(head), np.sin(head)])
        xy = start + s
        w = np.concatenate([xy, np.full((frames, 1), ANKLE_ABOVE_FLOOR_M)], 1)
        w += rng.normal(0, 0.02, w.shape)
        cam = (w - [0, 0, height]) @ R
        pts.append(cam)
        grp.append(np.full(frames, p))
    return np.concatenate(pts), np.concatenate(grp)


@pytest.mark.parametrize("pitch,roll", [(25.0, 3.0), (50.0, -4.0), (5.0, 0.0)])
def test_plane_fit_recovers_pitch_and_roll_within_a_degree(pitch, roll):
    rng = np.random.default_rng(1)
    pts, grp = _stance_floor(rng, pitch, roll, 4.0)
    wrong = up_from_pitch_roll(pitch - 8.0, roll + 4.0)  # a poor prior, pulled away by the data
    for groups in (None, grp):
        fit = fit_floor(pts, wrong, prior_sigma_deg=4.0, groups=groups)
        p, r = pitch_roll_from_up(fit.normal)
        assert abs(p - pitch) < 1.0 and abs(r - roll) < 1.0, (p, r, groups is None)
        assert abs(fit.height_m - 4.0) < 0.05
    # 20 % outliers (a foot in the air, a mis-detection) do not move it
    out = rng.choice(len(pts), len(pts) // 5, replace=False)
    bad = pts.copy()
    bad[out] += rng.uniform(-1.0, 1.0, (out.size, 3))
    fit = fit_floor(bad, wrong, prior_sigma_deg=4.0)
    assert angle_deg(fit.normal, up_from_pitch_roll(pitch, roll)) < 1.0


def test_h36m_walk_through_a_steep_camera(h36m_mini):
    """S1 walking seen from 6 m up, 35 degrees down, rolled 2: up, height, feet on z = 0."""
    g = h36m_mini["S1/Walking 1"].astype(np.float64)
    cam, uv = _project(g, 35.0, 2.0, 6.0, dist=8.0)
    cfg = WorldConfig(standing_height_m=None)
    with_rulers = place_in_world(*_lift_input(cam, uv), SIZE, cfg, fps=50.0).camera
    assert with_rulers.method == "floor fit + people as rulers + 2D verticals + body-up prior"
    # the rulers' own model (thorax straight above the mid-ankle) is a little off on real walks
    assert _gravity_error(with_rulers, 35.0, 2.0) < 2.5
    assert abs(with_rulers.height_m - 6.0) / 6.0 < 0.06
    cfg = replace(cfg, ruler_weight=0.0)
    res = place_in_world(*_lift_input(cam, uv), SIZE, cfg, fps=50.0)
    est = res.camera
    assert est.method == "floor fit + 2D verticals + body-up prior"
    # the floor's tilt is capped at PLANE_SIGMA_DEG (lifted feet are that far off end to end),
    # so on perfect 3D the body-up prior's lean costs a little; uncapped it is within 1 degree
    assert _gravity_error(est, 35.0, 2.0) < 1.5
    uncapped = replace(cfg, plane_sigma_deg=0.0)
    est0 = place_in_world(*_lift_input(cam, uv), SIZE, uncapped, fps=50.0).camera
    assert _gravity_error(est0, 35.0, 2.0) < 1.0
    assert abs(est.height_m - 6.0) / 6.0 < 0.05
    low = np.fmin(res.joints[:, 0, 3, 2], res.joints[:, 0, 6, 2])
    truth = np.fmin(g[:, 3, 2], g[:, 6, 2])
    drift = np.ptp(np.percentile(low, [5, 95])) - np.ptp(np.percentile(truth, [5, 95]))
    assert abs(drift) < 0.05
    assert abs(np.percentile(low, 50) - np.percentile(truth, 50)) < 0.05
    # the old assumption (10 degrees down) is far off for this camera
    fixed = place_in_world(*_lift_input(cam, uv), SIZE, WorldConfig(tilt_deg=10.0), fps=50.0)
    assert fixed.camera.method == "fixed 10° tilt"
    assert _gravity_error(fixed.camera, 35.0, 2.0) > 20


# ------------------------------------------------------------------------- fallbacks
def test_single_frame_falls_back_to_the_body_up_prior(h36m_mini):
    g = h36m_mini["S9/Directions"][:1].astype(np.float64)
    cam, uv = _project(g, 20.0, 0.0, 3.0, dist=6.0)
    est = place_in_world(*_lift_input(cam, uv), SIZE, WorldConfig(), fps=50.0).camera
    assert est.method == "body-up prior"  # one frame: no stance run, too few image axes
    assert any("stance" in n for n in est.notes)
    assert _gravity_error(est, 20.0, 0.0) < 8.0  # a body leans a few degrees


def test_one_standing_person_uses_the_prior_with_a_note(h36m_mini):
    g = h36m_mini["S9/Directions"].astype(np.float64)
    cam, uv = _project(g, 20.0, 0.0, 3.0, dist=6.0)
    res = place_in_world(*_lift_input(cam, uv), SIZE, WorldConfig(standing_height_m=None), fps=50.0)
    est = res.camera
    assert est.method == "people as rulers + 2D verticals + body-up prior"
    assert any("too little floor" in n for n in est.notes)
    assert est.stance_frames > 100
    assert _gravity_error(est, 20.0, 0.0) < 6.0
    low = np.fmin(res.joints[:, 0, 3, 2], res.joints[:, 0, 6, 2])
    assert abs(np.median(low) - ANKLE_ABOVE_FLOOR_M) < 0.05  # still standing on the floor


def _sitting(g: np.ndarray) -> np.ndarray:
    """The pose with thighs forward and horizontal (a person on a chair)."""
    s = g.copy()
    fwd = np.cross(s[:, 4] - s[:, 1], [0.0, 0.0, 1.0])  # body forward (left hip minus right)
    fwd /= np.linalg.norm(fwd, axis=1, keepdims=True)
    for hip, knee, ank in ((1, 2, 3), (4, 5, 6)):
        s[:, knee] = s[:, hip] + 0.45 * fwd
        s[:, ank] = s[:, knee] - [0.0, 0.0, 0.45]
    return s


def test_sitting_person_has_no_upright_frame_and_gets_the_default(h36m_mini):
    g = _sitting(h36m_mini["S9/Directions"].astype(np.float64))
    cam, uv = _project(g, 25.0, 0.0, 3.0, dist=6.0)
    est = place_in_world(*_lift_input(cam, uv), SIZE, WorldConfig(), fps=50.0).camera
    assert est.method == "fixed 10° tilt"
    assert any("no upright frame" in n for n in est.notes)
    assert np.isclose(est.pitch_deg, 10.0) and np.isfinite(est.height_m)


def test_no_feet_visible_falls_back_with_a_note(h36m_mini):
    g = h36m_mini["S1/Walking 1"].astype(np.float64)
    cam, uv = _project(g, 30.0, 0.0, 5.0, dist=8.0)
    rel, kp, sc = _lift_input(cam, uv)
    sc[..., [2, 3, 5, 6]] = 0.0  # knees and ankles out of the picture
    est = place_in_world(rel, kp, sc, SIZE, WorldConfig(), fps=50.0).camera
    assert est.method == "body-up prior"  # no ankle seen: no stance, no image axes
    assert any("no stance frame" in n for n in est.notes)
    assert np.isfinite(est.height_m)


def test_several_people_stand_on_one_floor(h36m_mini):
    """A walker and a smaller bystander: one floor for both, the bystander's size corrected."""
    walk = h36m_mini["S1/Walking 1"].astype(np.float64)
    stand = h36m_mini["S9/Directions"].astype(np.float64)
    stand = stand - [stand[:, 0, 0].mean() - 1.5, stand[:, 0, 1].mean() - 3.0, 0.0]
    world = np.stack([walk, stand], axis=1)
    cam, uv = _project(world, 30.0, -2.0, 5.0, dist=8.0)
    rel, kp, sc = _lift_input(cam, uv)
    rel[:, 1] *= 1.12  # the lifter thinks the bystander is 12 % taller than they are
    res = place_in_world(rel, kp, sc, SIZE, WorldConfig(standing_height_m=None), fps=50.0)
    est = res.camera
    assert est.stance_persons == 2 and est.persons == 2
    assert _gravity_error(est, 30.0, -2.0) < 2.5  # the capped floor lets the priors' lean in
    uncapped = WorldConfig(standing_height_m=None, plane_sigma_deg=0.0)
    est0 = place_in_world(rel, kp, sc, SIZE, uncapped, fps=50.0).camera
    assert _gravity_error(est0, 30.0, -2.0) < 1.5
    for p in range(2):
        low = np.fmin(res.joints[:, p, 3, 2], res.joints[:, p, 6, 2])
        assert abs(np.median(low) - np.median(np.fmin(world[:, p, 3, 2], world[:, p, 6, 2]))) < 0.06
    assert abs(est.person_scale[1] / est.person_scale[0] - 1 / 1.12) < 0.03


def test_known_camera_height_sets_the_scale(h36m_mini):
    g = h36m_mini["S1/Walking 1"].astype(np.float64)
    cam, uv = _project(g, 30.0, 0.0, 5.0, dist=8.0)
    rel, kp, sc = _lift_input(cam, uv)
    res = place_in_world(
        rel * 1.2, kp, sc, SIZE, WorldConfig(standing_height_m=None, camera_height_m=5.0), fps=50.0
    )
    assert res.camera.height_m == 5.0
    low = np.fmin(res.joints[:, 0, 3, 2], res.joints[:, 0, 6, 2])
    assert abs(np.median(low) - np.median(np.fmin(g[:, 3, 2], g[:, 6, 2]))) < 0.05


# ------------------------------------------------------------------------- metadata, focal
def test_camera_estimate_round_trips_through_json(h36m_mini):
    g = h36m_mini["S1/Walking 1"][:200].astype(np.float64)
    cam, uv = _project(g, 30.0, 1.0, 5.0, dist=8.0)
    est = place_in_world(*_lift_input(cam, uv), SIZE, WorldConfig(), fps=50.0).camera
    back = CameraEstimate.from_dict(json.loads(json.dumps(est.to_dict(), allow_nan=False)))
    assert back.to_dict() == est.to_dict()
    line = est.summary()
    assert re.match(r"camera: \d+° down, -?\d+° roll, \d+\.\d m above the floor \(floor fit", line)
    assert "stance frames of 1 person" in line and "focal 1280 px (default max(w, h))" in line
    nan = CameraEstimate(10.0, 0.0, float("nan"), 768.0, "x", "fixed 10° tilt")
    assert (
        CameraEstimate.from_dict(json.loads(json.dumps(nan.to_dict()))).to_dict() == nan.to_dict()
    )


def test_focal_from_video_tags():
    tags = {"com.apple.quicktime.camera.focal_length.35mmEquivalent": "26"}
    f = focal_from_tags(tags, (1920, 1080))
    assert f is not None and np.isclose(f.px, 26 / 43.2666 * np.hypot(1920, 1080), rtol=1e-4)
    assert "35mmEquivalent" in f.source
    assert focal_from_tags({"FocalLengthIn35mmFilm": "28 mm"}, (1000, 1000)) is not None
    assert focal_from_tags({"encoder": "Lavf", "focal_length": "4.2"}, (1000, 1000)) is None
    assert resolve_focal((640, 480)).source == "default max(w, h)"
    assert resolve_focal((640, 480), 900.0).px == 900.0


# ------------------------------------------------------------------------- the 3D panel
@pytest.mark.parametrize(
    "args,msg",
    [(["--tilt", "steep"], "--tilt must be 'auto'"), (["--focal", "-5"], "--focal must be positive"),
     (["--camera-height", "0"], "--camera-height must be positive")],
)  # fmt: skip
def test_cli_world_flags_are_checked(args, msg, capsys):
    from hgmamba_cli.app import main

    with pytest.raises(SystemExit) as e:
        main(["lift", "--no-render", *args])
    err = capsys.readouterr().err.strip()
    assert e.value.code != 0 and msg in err and "\n" not in err


def test_focal_from_a_tagged_video(tmp_path):
    """A phone-style 35 mm-equivalent tag written into an mp4 is read back through PyAV."""
    av = pytest.importorskip("av")
    from hgmamba_core.world.focal import video_tags

    path = tmp_path / "tagged.mp4"
    with av.open(str(path), "w", options={"movflags": "use_metadata_tags"}) as c:
        c.metadata["com.apple.quicktime.camera.focal_length.35mmEquivalent"] = "26"
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for _ in range(3):
            for pk in s.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8))):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    assert video_tags(path)["com.apple.quicktime.camera.focal_length.35mmEquivalent"] == "26"
    f = resolve_focal((64, 48), None, path)
    assert np.isclose(f.px, 26 / 43.2666 * 80.0, rtol=1e-3) and f.source.startswith(
        "video metadata"
    )
    assert resolve_focal((64, 48), None, tmp_path / "missing.mp4").source == "default max(w, h)"


# ------------------------------------------------------------- contact and rulers
def test_contact_keeps_a_trending_walk_on_the_floor_to_its_ends():
    """Under a slightly wrong floor the depth factor trends along a walk: the ends must be
    followed (they were held by a clip-wide outlier test: ankles 0.2-0.6 m up on the demo),
    while a single garbage frame is still dropped."""
    from hgmamba_core.world.convert import contact_scale

    F, H = 60, 4.0
    up = up_from_pitch_roll(20.0)
    base = np.zeros((F, 17, 3))
    # the lowest ankle's distance below the camera, drifting from 2.4 m to 5.2 m (factor
    # 0.75-1.6), the other ankle 0.2 m higher
    below = np.linspace(2.4, 5.2, F)
    base[:, 3] = -below[:, None] * up
    base[:, 6] = -(below - 0.2)[:, None] * up
    base[30, [3, 6]] = -3.0 * below[30] * up  # one garbage frame: the feet 3x too deep
    k, note = contact_scale(base, up, H, np.arange(F), fps=10.0)
    assert not note
    landed = H - k * np.fmax(-(base[:, 3] @ up), -(base[:, 6] @ up))
    good = np.arange(F) != 30
    assert np.abs(landed[good] - ANKLE_ABOVE_FLOOR_M).max() < 0.03
    assert abs(k[30] - 0.5 * (k[29] + k[31])) < 0.02  # interpolated over the garbage frame
    # the rule before: clip-wide median test, 0.7-1.4: the ends float
    k0, _ = contact_scale(base, up, H, np.arange(F), fps=10.0, scale_range=(0.7, 1.4),
                          outlier_window_s=0.0)  # fmt: skip
    landed0 = H - k0 * np.fmax(-(base[:, 3] @ up), -(base[:, 6] @ up))
    assert np.abs(landed0[good] - ANKLE_ABOVE_FLOOR_M).max() > 0.2


def _rulers(pitch: float, roll: float, height: float, walk: bool):
    """Upright people as 2D axes (mid-ankle on the floor, thorax 1.3 m above), seen by a
    camera `height` m up, yaw 0; walking: each person crosses metres of floor in depth."""
    from hgmamba_core.world.floor import Rulers

    rng = np.random.default_rng(3)
    R = rotation_from_up(up_from_pitch_roll(pitch, roll))
    f, c = 1000.0, np.array(SIZE) / 2.0
    feet, tops, who = [], [], []
    for p, (x0, y0) in enumerate([(-1.0, 6.0), (1.5, 9.0), (0.0, 12.0)]):
        t = np.linspace(0, 1, 60)
        xy = (
            np.stack([x0 + 2.0 * t * walk, y0 + 5.0 * t * walk], 1)
            if walk
            else np.tile([x0, y0], (60, 1))
        )
        for top_z, out in ((0.0, feet), (1.3 + 0.05 * p, tops)):
            w = np.concatenate([xy, np.full((60, 1), top_z)], 1) - [0.0, 0.0, height]
            cam = w @ R  # world -> camera
            out.append(f * cam[:, :2] / cam[:, 2:3] + c + rng.normal(0, 0.7, (60, 2)))
        who.append(np.full(60, p))
    foot, top = np.concatenate(feet), np.concatenate(tops)
    length = np.linalg.norm(top - foot, axis=1)
    return Rulers(foot, top, np.concatenate(who), np.full(len(foot), np.median(length))), f


@pytest.mark.parametrize("pitch,roll", [(35.0, 3.0), (10.0, -2.0), (55.0, 0.0)])
def test_people_as_rulers_recover_pitch_and_roll(pitch, roll):
    from hgmamba_core.world.floor import ruler_info

    r, f = _rulers(pitch, roll, 5.0, walk=True)
    start = up_from_pitch_roll(pitch - 12.0, roll + 5.0)  # a poor start
    info, up = ruler_info(r, SIZE, f, start, fps=25.0)
    assert up is not None and angle_deg(up, up_from_pitch_roll(pitch, roll)) < 1.0
    assert np.allclose(info @ up, 0.0, atol=1e-6 * np.abs(info).max())  # no pull along up
    assert np.linalg.eigvalsh(info)[1] > 1.0 / np.deg2rad(2.0) ** 2  # both tilts known


def _size_drift(joints: np.ndarray) -> float:
    """p90 / p10 - 1 of one person's standing height over frames (F, 17, 3)."""
    from hgmamba_core.world.frame import standing_height

    size = standing_height(joints)
    size = size[np.isfinite(size)]
    return float(np.percentile(size, 90) / np.percentile(size, 10) - 1.0)


@pytest.mark.parametrize("pitch,focal_factor", [(30.0, 0.7), (20.0, 0.6)])
def test_rulers_keep_a_walker_one_size_when_the_focal_length_is_a_guess(
    h36m_mini, pitch, focal_factor
):
    """A walk in depth seen through a lens wider than lift's guess (max(w, h)): without the
    rulers the floor comes out at the wrong tilt and the person grows or shrinks along the
    walk (the real clip vtest.avi: 54 % between the 10th and 90th percentile); the rulers,
    fitted with the guessed focal length, keep the size and the camera height closer."""
    g = h36m_mini["S1/Walking 1"].astype(np.float64)
    cam, uv = _project(g, pitch, 0.0, 5.0, dist=8.0, focal=focal_factor * max(SIZE))
    args = (*_lift_input(cam, uv), SIZE)
    cfg = WorldConfig(standing_height_m=None, rulers_guessed_focal=False)
    off = place_in_world(*args, cfg, fps=50.0)
    on = place_in_world(*args, replace(cfg, rulers_guessed_focal=True), fps=50.0)
    assert "people as rulers" in on.camera.method and "rulers" not in off.camera.method
    assert _size_drift(on.joints[:, 0]) < 0.5 * _size_drift(off.joints[:, 0])
    assert abs(on.camera.height_m - 5.0) < abs(off.camera.height_m - 5.0)


def test_rulers_that_stand_still_say_little_about_the_pitch():
    """Still people at one distance each: their size and the pitch trade off, so the ruler's
    information on the pitch must stay weak (it is fused, never trusted alone)."""
    from hgmamba_core.world.floor import ruler_info

    r, f = _rulers(30.0, 0.0, 5.0, walk=False)
    info_still, _ = ruler_info(r, SIZE, f, up_from_pitch_roll(30.0), fps=25.0)
    r, f = _rulers(30.0, 0.0, 5.0, walk=True)
    info_walk, _ = ruler_info(r, SIZE, f, up_from_pitch_roll(30.0), fps=25.0)
    assert np.linalg.eigvalsh(info_still)[1] < 0.2 * np.linalg.eigvalsh(info_walk)[1]


def test_reorient_undoes_a_lifters_viewpoint_bias(h36m_mini):
    """A lifter that returns the body as a flatter camera would see it (12 degrees turned
    about the camera's x axis): the reprojection fit turns it back, and the body-up prior
    follows; frames that are not upright (or too few) leave the track as it is."""
    from hgmamba_core.world.floor import body_up_prior
    from hgmamba_core.world.frame import _rodrigues, reorient_to_2d

    g = h36m_mini["S1/Walking 1"].astype(np.float64)
    cam, uv = _project(g, 40.0, 0.0, 5.0, dist=7.0)
    rel = cam - cam[:, :1]
    biased = rel @ _rodrigues(np.deg2rad([12.0, 0.0, 0.0])).T
    sc = np.ones(uv.shape[:2])
    fixed, ang = reorient_to_2d(biased, uv, sc, SIZE, float(max(SIZE)))
    assert abs(ang - 12.0) < 1.5
    up = up_from_pitch_roll(40.0)
    before, _ = body_up_prior([biased + cam[:, :1]])
    after, _ = body_up_prior([fixed + cam[:, :1]])
    assert angle_deg(after, up) < angle_deg(before, up) - 8.0
    same, ang0 = reorient_to_2d(
        biased, uv, sc, SIZE, float(max(SIZE)), frames=np.zeros(len(g), bool)
    )
    assert ang0 == 0.0 and same is biased
    # a turn beyond MAX_REORIENT_DEG is taken for a fit gone astray: the lift is kept
    far = rel @ _rodrigues(np.deg2rad([90.0, 0.0, 0.0])).T
    kept, ang90 = reorient_to_2d(far, uv, sc, SIZE, float(max(SIZE)))
    assert ang90 == 0.0 and kept is far
