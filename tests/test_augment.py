"""The wild recipe's pieces: virtual cameras, detector-like 2D, front-end joints, normalization."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from h36m_tmpdata import write_mini_h36m

import hgmamba_core.data.wild as wild
import hgmamba_core.skeleton as skeleton
from hgmamba_core.camera import project, world_to_camera
from hgmamba_core.data.augment import (
    confidence_from_error,
    detector_like_2d,
    displace_joints,
    person_size,
)
from hgmamba_core.data.normalize import InputNorm, normalize_windows
from hgmamba_core.data.virtual_camera import (
    CameraRanges,
    camera_pitch_deg,
    look_at_camera,
    project_view,
    root_relative,
    sample_camera,
)
from hgmamba_core.data.windows import flip_poses
from hgmamba_core.errors import HGMambaError
from hgmamba_core.poses import normalize_screen
from hgmamba_core.train import TrainConfig, resolve_recipe, train


@pytest.fixture(scope="module")
def walk(h36m_mini) -> np.ndarray:
    """27 frames (every 2nd) of real S1 'Walking 1' world 3D, metres, z up."""
    return h36m_mini["S1/Walking 1"][:54:2].astype(np.float64)


def test_look_at_camera_matches_hand_computed_projection():
    target = np.array([1.0, 2.0, 0.9])
    cam = look_at_camera(target, 0.0, 0.0, 0.0, 5.0, 1000.0, (1280, 720))
    # yaw 0, pitch 0: the camera sits at target + 5 m along +x and looks along -x, so its
    # x (right) axis is world +y and its y (down) axis world -z
    np.testing.assert_allclose(cam.T, [6.0, 2.0, 0.9])
    np.testing.assert_allclose(cam.R, [[0, 1, 0], [0, 0, -1], [-1, 0, 0]], atol=1e-12)
    p = target + np.array([0.0, 0.5, 0.2])  # 0.5 m to the camera's right, 0.2 m up
    uv = project(world_to_camera(p[None], cam), cam)[0]
    np.testing.assert_allclose(uv, [640 + 1000 * 0.5 / 5, 360 - 1000 * 0.2 / 5], atol=1e-9)


def test_pitch_roll_and_offset():
    target = np.zeros(3)
    cam = look_at_camera(target, 40.0, 30.0, 0.0, 4.0, 800.0, (720, 1280))
    assert camera_pitch_deg(cam) == pytest.approx(30.0)
    np.testing.assert_allclose(cam.T[2], 4.0 * np.sin(np.deg2rad(30)))
    np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(cam.R) == pytest.approx(1.0)
    np.testing.assert_allclose(project(world_to_camera(target[None], cam), cam)[0], [360, 640])
    up = project(world_to_camera(np.array([[0.0, 0.0, 0.5]]), cam), cam)[0]
    assert up[1] < 640 and abs(up[0] - 360) < 1e-6  # above the target: higher in the image
    rolled = look_at_camera(target, 40.0, 30.0, 5.0, 4.0, 800.0, (720, 1280))
    up_r = project(world_to_camera(np.array([[0.0, 0.0, 0.5]]), rolled), rolled)[0]
    assert abs(up_r[0] - 360) > 1.0  # the roll tilts the vertical
    moved = look_at_camera(target, 40.0, 30.0, 0.0, 4.0, 800.0, (720, 1280), (100.0, -50.0))
    np.testing.assert_allclose(
        project(world_to_camera(target[None], moved), moved)[0], [460, 590], atol=1e-6
    )


def test_sampled_cameras_cover_the_ranges_and_keep_the_person_in_view(walk):
    rng = np.random.default_rng(0)
    ranges = CameraRanges()
    pitches = []
    for _ in range(40):
        vc = sample_camera(walk, rng, ranges)
        view = project_view(walk, vc.camera)
        w, h = view.size
        assert (view.joints_cam[..., 2] > 0.4).all()
        lo, hi = view.keypoints.reshape(-1, 2).min(0), view.keypoints.reshape(-1, 2).max(0)
        assert lo[0] > -1 and lo[1] > -1 and hi[0] < w + 1 and hi[1] < h + 1
        assert ranges.distance_m[0] <= vc.distance_m
        assert -5 <= vc.roll_deg <= 5 and -10 <= vc.pitch_deg <= 60
        pitches.append(vc.pitch_deg)
    assert min(pitches) < 10 and max(pitches) > 45
    a = sample_camera(walk, np.random.default_rng(7))
    b = sample_camera(walk, np.random.default_rng(7))
    np.testing.assert_array_equal(a.camera.R, b.camera.R)  # a pure function of the rng


def test_virtual_window_targets_are_root_relative_camera_frame(walk):
    recipe = wild.WildRecipe(virtual_p=1.0, noise_p=0.0, derive_p=0.0, stress_p=0.0)
    x, y = wild.make_window(walk, np.random.default_rng(3), recipe, real_cameras=[])
    rng = np.random.default_rng(3)
    rng.random()  # make_window's draw of the source
    cam = sample_camera(walk, rng, recipe.cameras).camera
    cam_3d = world_to_camera(walk, cam)
    np.testing.assert_allclose(y, cam_3d - cam_3d[:, :1], atol=1e-5)
    assert np.abs(y[:, 0]).max() == 0.0
    np.testing.assert_allclose(
        x[..., :2], normalize_screen(project(cam_3d, cam), *cam.res), atol=1e-5
    )
    np.testing.assert_array_equal(x[..., 2], 1.0)
    # a rigid change of frame: bone lengths are the world's
    bones = np.linalg.norm(
        walk[:, 1:] - walk[:, [skeleton.H36M_PARENTS[j] for j in range(1, 17)]], axis=-1
    )
    got = np.linalg.norm(y[:, 1:] - y[:, [skeleton.H36M_PARENTS[j] for j in range(1, 17)]], axis=-1)
    np.testing.assert_allclose(got, bones, atol=1e-5)


def test_real_camera_window_equals_the_h36m_pipeline(h36m_dir, h36m_mini, walk):
    from hgmamba_core.camera import load_h36m_cameras

    cams = load_h36m_cameras(h36m_dir / "h36m_cameras.json")["S1"]
    recipe = wild.WildRecipe(virtual_p=0.0, sh_p=0.0, noise_p=0.0, derive_p=0.0, stress_p=0.0)
    x, y = wild.make_window(walk, np.random.default_rng(1), recipe, cams)
    # which camera was used: the one whose projection (with distortion) gives the input
    errs = []
    for cam in cams:
        kp = project(world_to_camera(walk, cam), cam)
        errs.append(np.abs(normalize_screen(kp, *cam.res) - x[..., :2]).max())
    assert min(errs) < 1e-5
    if cams[0].id == "54138969":  # the mini file's projected GT is this camera's
        gt = h36m_mini["S1/Walking 1.54138969"][:54:2]
        kp = project_view(walk, cams[0]).keypoints
        np.testing.assert_allclose(kp, gt, atol=0.05)
    np.testing.assert_allclose(y, root_relative(y), atol=1e-7)


def test_flip_still_swaps_the_right_joints_after_synthesis(walk):
    recipe = wild.WildRecipe(virtual_p=1.0, noise_p=1.0, derive_p=1.0, stress_p=0.0)
    x, _ = wild.make_window(walk, np.random.default_rng(11), recipe, real_cameras=[])
    # the synthesized joints are what the rule gives from the (noisy) hips and shoulders
    again, _ = skeleton.synthesize_derived_joints(x[..., :2], x[..., 2])
    np.testing.assert_allclose(again, x[..., :2], atol=1e-6)
    f = flip_poses(x)
    np.testing.assert_allclose(f[:, 1, 0], -x[:, 4, 0])  # r_hip <- mirrored l_hip
    np.testing.assert_allclose(f[:, 14, 1], x[:, 11, 1])  # r_shoulder <- l_shoulder
    np.testing.assert_allclose(f[:, 0, 0], -x[:, 0, 0])  # pelvis stays, mirrored
    synth_of_flip, conf = skeleton.synthesize_derived_joints(f[..., :2], f[..., 2])
    np.testing.assert_allclose(synth_of_flip, f[..., :2], atol=1e-6)
    np.testing.assert_allclose(conf, f[..., 2], atol=1e-6)


def test_confidence_falls_monotonically_with_error(walk):
    e = np.linspace(0.0, 1.0, 200)
    c = confidence_from_error(e, top=0.9)
    assert c[0] == pytest.approx(0.9) and np.all(np.diff(c) < 0) and c[-1] >= 0
    kp = project_view(walk, sample_camera(walk, np.random.default_rng(2)).camera).keypoints
    noisy = detector_like_2d(kp, np.random.default_rng(5))
    assert np.isfinite(noisy.keypoints).all() and noisy.keypoints.shape == kp.shape
    keep = ~noisy.dropped
    err = np.linalg.norm(noisy.keypoints - kp, axis=-1)[keep]
    conf = noisy.confidence[keep]
    order = np.argsort(err)
    assert np.all(np.diff(conf[order]) <= 1e-6)  # same window: one score per error
    assert err.max() > 0.01 * person_size(kp)  # it is noisy


def test_dropped_joints_are_filled_like_the_front_end(walk):
    from detectors.cleaning import INTERP_CONF_FACTOR

    kp = project_view(walk, sample_camera(walk, np.random.default_rng(2)).camera).keypoints
    noise = wild.DetectorNoise(drop_p=0.2, outlier_p=0.0, swap_p=0.0, sigma=(0.0, 0.0))
    noisy = detector_like_2d(kp, np.random.default_rng(9), noise)
    assert noisy.dropped.any() and np.isfinite(noisy.keypoints).all()
    # the confidence of a filled joint is 0 or half its neighbours' (never a full score)
    assert noisy.confidence[noisy.dropped].max() <= INTERP_CONF_FACTOR + 1e-6
    # with no jitter, filled positions lie between observed ones (interpolated, not random)
    t, j = np.argwhere(noisy.dropped)[0]
    assert np.linalg.norm(noisy.keypoints[t, j] - kp[t, j]) < 0.3 * person_size(kp)


def test_displaced_joints_get_confidence_zero(walk):
    kp = project_view(walk, sample_camera(walk, np.random.default_rng(2)).camera).keypoints
    moved, conf = displace_joints(kp, np.ones(kp.shape[:2]), np.random.default_rng(0), 0.2)
    hit = conf == 0
    assert 0.1 < hit.mean() < 0.3
    assert (np.linalg.norm(moved - kp, axis=-1)[hit] > 0.19 * person_size(kp)).all()
    np.testing.assert_array_equal(moved[~hit], kp[~hit])


def test_coco_front_end_and_training_share_one_synthesis(monkeypatch):
    assert wild.synthesize_derived_joints is skeleton.synthesize_derived_joints
    calls = []
    real = skeleton.synthesize_derived_joints

    def spy(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(skeleton, "synthesize_derived_joints", spy)
    rng = np.random.default_rng(0)
    coco = rng.uniform(0, 500, (4, 17, 2)).astype(np.float32)
    xy, conf = skeleton.coco_to_h36m(coco, rng.uniform(0.3, 1, (4, 17)))
    assert calls == [1]
    np.testing.assert_allclose(xy[:, 0], 0.5 * (coco[:, 11] + coco[:, 12]), rtol=1e-6)
    np.testing.assert_allclose(xy[:, 8], 0.5 * (coco[:, 5] + coco[:, 6]), rtol=1e-6)
    np.testing.assert_allclose(xy[:, 7], 0.5 * (xy[:, 0] + xy[:, 8]), rtol=1e-6)
    np.testing.assert_allclose(xy[:, 9], coco[:, 0])
    np.testing.assert_allclose(xy[:, 10], (coco[:, 1] + coco[:, 2]) - coco[:, 0], rtol=1e-5)
    # the same rule on H36M joints (training) re-makes pelvis, spine and thorax only
    again, _ = real(xy, conf)
    np.testing.assert_allclose(again, xy, rtol=1e-6)


def test_person_normalization_is_scale_and_shift_free(walk):
    kp = project_view(walk, sample_camera(walk, np.random.default_rng(4)).camera)
    x = np.concatenate([normalize_screen(kp.keypoints, *kp.size), np.ones((27, 17, 1))], -1)
    zoomed = x.copy()
    zoomed[..., :2] = zoomed[..., :2] * 0.4 + np.array([0.3, -0.2])
    norm = InputNorm("person")
    a, b = normalize_windows(x, norm), normalize_windows(zoomed, norm)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_array_equal(normalize_windows(x, InputNorm("screen")), x.astype(np.float32))
    # flip commutes with it (the box is left/right symmetric)
    np.testing.assert_allclose(
        normalize_windows(flip_poses(x), norm), flip_poses(normalize_windows(x, norm)), atol=1e-6
    )
    with pytest.raises(HGMambaError, match="unknown input normalization"):
        InputNorm("bbox")


def test_recipes_resolve_and_h36m_keeps_old_behaviour():
    base = dict(out="o", data="d")
    h = resolve_recipe(TrainConfig(**base))
    assert (h.virtual_cameras, h.detector_noise, h.input_norm) == (0.0, 0.0, "screen")
    w = resolve_recipe(TrainConfig(**base, recipe="wild", detector_noise=0.0))
    assert w.virtual_cameras == 0.7 and w.detector_noise == 0.0 and w.input_norm == "person"
    with pytest.raises(HGMambaError, match="need --recipe wild"):
        resolve_recipe(TrainConfig(**base, virtual_cameras=0.5))
    with pytest.raises(HGMambaError, match="unknown --recipe"):
        resolve_recipe(TrainConfig(**base, recipe="outdoor"))


def test_wild_batches_are_deterministic_for_resume(h36m_dir, tmp_path):
    data = write_mini_h36m(h36m_dir, tmp_path / "h36m", frames=120)
    store = wild.load_world_store(data, ["S1"])
    ww = wild.WildWindows(store, wild.WildRecipe(), 9, 3, 2)
    all_b = list(ww.batches(0, 5, 4))
    again = list(ww.batches(0, 5, 4, start_step=2))
    np.testing.assert_array_equal(all_b[2].inputs, again[0].inputs)
    np.testing.assert_array_equal(all_b[2].targets, again[0].targets)
    assert np.isfinite(all_b[0].inputs).all() and np.abs(all_b[0].targets[..., 0, :]).max() == 0


def test_checkpoint_records_recipe_and_lift_applies_its_normalization(h36m_dir, tmp_path):
    from hgmamba_core.lift import Lifter
    from hgmamba_core.model.checkpoint import load_lifter

    data = write_mini_h36m(h36m_dir, tmp_path / "h36m", frames=120)
    cfg = TrainConfig(
        out=str(tmp_path / "run"), data=str(data), variant="tiny", batch_size=4, max_steps=2,
        train_subjects=["S1"], test_subjects=["S9"], eval_every=0, device="cpu", recipe="wild",
        input_norm="person",
    )  # fmt: skip
    train(cfg)
    model = load_lifter(tmp_path / "run" / "final.pt")
    assert model.meta["recipe"]["name"] == "wild"
    assert model.meta["recipe"]["virtual_p"] == pytest.approx(0.7)
    assert model.meta["input_norm"] == {"mode": "person", "ref": pytest.approx(0.68)}
    rng = np.random.default_rng(0)
    track = np.concatenate([rng.uniform(-0.3, 0.3, (9, 17, 2)), np.ones((9, 17, 1))], -1).astype(
        np.float32
    )
    lifter = Lifter(model, T=9, flip=False)
    got = lifter.lift_track(track)
    with torch.inference_mode():
        want = model(torch.from_numpy(normalize_windows(track[None], InputNorm("person"))))[0]
    want = want.numpy() - want.numpy()[:, :1]
    np.testing.assert_allclose(got, want, atol=1e-5)
    # and so the lift does not change when the person is smaller and elsewhere in the frame
    small = track.copy()
    small[..., :2] = small[..., :2] * 0.5 + 0.2
    np.testing.assert_allclose(lifter.lift_track(small), got, atol=1e-4)
    screen = Lifter(model, T=9, flip=False, input_norm=InputNorm("screen")).lift_track(track)
    assert np.abs(screen - got).max() > 1e-4  # the normalization matters to this model


def test_wild_bench_set_is_fixed_and_stratified_by_pitch(h36m_dir, tmp_path):
    from hgmamba_core.data.wild_bench import (
        PITCH_BUCKETS,
        build_wild_set,
        score_windows,
        stress_inputs,
    )

    data = write_mini_h36m(h36m_dir, tmp_path / "h36m", frames=120)
    a = build_wild_set(data, per_bucket=2, subjects=["S9"], length=9)
    b = build_wild_set(data, per_bucket=2, subjects=["S9"], length=9)
    np.testing.assert_array_equal(a.inputs, b.inputs)  # same seed, same windows
    assert a.inputs.shape == (8, 9, 17, 3) and sorted(a.bucket.tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]
    for p, k in zip(a.pitch_deg, a.bucket, strict=True):
        lo, hi = PITCH_BUCKETS[k]
        assert lo <= p <= hi
    assert np.abs(a.targets[..., 0, :]).max() == 0
    s = stress_inputs(a, share=0.2)
    zero = s[..., 2] == 0
    assert 0.1 < zero.mean() < 0.3 and (a.inputs[..., 2][zero] > 0).any()
    assert score_windows(a.targets, a.targets) == {"p1": 0.0, "p2": pytest.approx(0.0, abs=1e-6)}
