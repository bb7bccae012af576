"""Window blending, padding, gaps and flip TTA of the Lifter; camera -> world conversion.

The lifter math is tested with small deterministic torch modules written here (test doubles
with known outputs), so every expected value can be computed by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hgmamba_core.lift import (
    Lifter,
    blend_weights,
    default_stride,
    pad_to,
    valid_segments,
    window_starts,
)
from hgmamba_core.skeleton import flip_permutation
from hgmamba_core.world import (
    ANKLE_ABOVE_FLOOR_M,
    WorldConfig,
    camera_to_world_rotation,
    rescale_to_height,
    standing_height,
    to_world,
)
from hgmamba_core.world.convert import SCALE_RANGE

T = 27


class RootZeroIdentity(torch.nn.Module):
    """Per-frame identity with the root joint zeroed: the blend must reproduce the input."""

    def __init__(self) -> None:
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1] == T
        self.seen.append(x.clone())
        y = x.clone()
        y[..., 0, :] = 0.0
        return y + self.p


class PositionBias(RootZeroIdentity):
    """Identity plus an error that drifts across the window (a ramp): tiling would jump."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        t = torch.arange(x.shape[1], dtype=x.dtype)
        bias = (t - (x.shape[1] - 1) / 2) / x.shape[1]
        y[..., 1:, 2] += bias[None, :, None]
        return y


class WindowMean(RootZeroIdentity):
    """Each output depends on the whole window (its mean): exposes batch/window mix-ups."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return y + x.mean(dim=1, keepdim=True) * 0.5


class RightHipBias(RootZeroIdentity):
    """Not mirror-symmetric: adds 0.1 to the right hip's x."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        y[..., 1, 0] += 0.1
        return y


def smooth_track(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None, None] / 10.0
    phase = rng.uniform(0, 6.28, size=(1, 17, 3))
    x = (0.3 * np.sin(t + phase)).astype(np.float32)
    x[..., 2] = rng.uniform(0.3, 1.0, size=(n, 17)).astype(np.float32)
    return x


def expected(track: np.ndarray) -> np.ndarray:
    out = track.copy()
    out[:, 0] = 0.0
    return out


def test_window_starts_cover_every_frame():
    for length in (27, 28, 40, 53, 54, 100, 1000):
        s = window_starts(length, T, 13)
        assert s[0] == 0 and s[-1] == length - T
        covered = np.zeros(length, int)
        for a in s:
            covered[a : a + T] += 1
        assert covered.min() >= 1
        assert np.all(np.diff(s) <= 13) and np.all(np.diff(s) > 0)
    with pytest.raises(ValueError):
        window_starts(10, T, 13)


def test_blend_weights_fade_but_never_vanish():
    w = blend_weights(T, floor=0.05)
    assert w.shape == (T,) and w.min() >= 0.05 and w.max() <= 1.0
    assert w[0] < 0.1 and w[T // 2] > 0.95
    np.testing.assert_allclose(w, w[::-1])  # symmetric


def test_pad_to_edge_replicates_centred():
    seq = np.arange(5)[:, None]
    padded, off = pad_to(seq, 9)
    assert off == 2
    np.testing.assert_array_equal(padded[:, 0], [0, 0, 0, 1, 2, 3, 4, 4, 4])
    same, off0 = pad_to(np.arange(12)[:, None], 9)
    assert off0 == 0 and same.shape[0] == 12


@pytest.mark.parametrize("n", [1, 5, 26, 27, 28, 40, 54, 100, 301])
@pytest.mark.parametrize("flip", [False, True])
def test_identity_model_reconstructs_exactly(n, flip):
    track = smooth_track(n)
    lifter = Lifter(RootZeroIdentity(), T=T, flip=flip, batch_size=7)
    out = lifter.lift_track(track)
    assert out.shape == (n, 17, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected(track), atol=1e-6)


def test_short_track_is_padded_by_edge_replication():
    track = smooth_track(5)
    model = RootZeroIdentity()
    Lifter(model, T=T, flip=False).lift_track(track)
    (seen,) = model.seen
    assert seen.shape == (1, T, 17, 3)
    seen = seen[0].numpy()
    np.testing.assert_array_equal(seen[:11], np.repeat(track[:1], 11, axis=0))
    np.testing.assert_array_equal(seen[11:16], track)
    np.testing.assert_array_equal(seen[16:], np.repeat(track[-1:], 11, axis=0))


def test_blending_has_no_seams():
    """A window-edge error blends into a smooth curve; naive tiling jumps at every boundary."""
    n = 200
    track = np.zeros((n, 17, 3), np.float32)
    out = Lifter(PositionBias(), T=T, flip=False).lift_track(track)
    err = out[:, 1, 2]  # the bias the model added, after blending
    t = np.arange(T)
    bias = (t - (T - 1) / 2) / T
    naive = np.concatenate([bias] * (n // T + 1))[:n]
    naive_jump = np.abs(np.diff(naive)).max()
    assert naive_jump > 0.9
    # blended: frame-to-frame changes stay small everywhere, and the error itself shrinks
    assert np.abs(np.diff(err)).max() < naive_jump / 8
    assert np.abs(err[T:-T]).max() < np.abs(bias).max() / 2


def test_blend_equals_hand_computed_weighted_mean():
    """Each frame = sum_w weight(pos) * pred_w(pos) / sum_w weight(pos), computed independently."""
    n, stride = 60, 13
    track = np.zeros((n, 17, 3), np.float32)
    out = Lifter(PositionBias(), T=T, stride=stride, flip=False).lift_track(track)
    w = blend_weights(T, 0.05)
    t = np.arange(T)
    bias = (t - (T - 1) / 2) / T
    num, den = np.zeros(n), np.zeros(n)
    for s in window_starts(n, T, stride):
        num[s : s + T] += w * bias
        den[s : s + T] += w
    np.testing.assert_allclose(out[:, 5, 2], num / den, rtol=1e-5)


def test_default_stride_is_three_quarters_of_T_and_sets_the_windows():
    assert [default_stride(t) for t in (1, 2, 27, 81, 243)] == [1, 2, 20, 61, 182]
    n = 80
    track = smooth_track(n)
    model = RootZeroIdentity()
    lifter = Lifter(model, T=T, flip=False, batch_size=1)
    assert lifter.window_stride == 20
    out = lifter.lift_track(track)
    starts = window_starts(n, T, 20)
    np.testing.assert_array_equal(starts, [0, 20, 40, 53])
    assert len(model.seen) == len(starts)
    for s, seen in zip(starts, model.seen, strict=True):
        np.testing.assert_array_equal(seen[0].numpy(), track[s : s + T])
    np.testing.assert_allclose(out, expected(track), atol=1e-6)
    assert Lifter(model, T=T, stride=13).window_stride == 13


def test_batch_size_does_not_change_results():
    track = smooth_track(123)
    a = Lifter(WindowMean(), T=T, batch_size=1).lift_track(track)
    b = Lifter(WindowMean(), T=T, batch_size=64).lift_track(track)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_several_tracks_batched_together_match_one_by_one():
    tracks = [smooth_track(40, 1), smooth_track(7, 2), smooth_track(90, 3)]
    lifter = Lifter(WindowMean(), T=T, batch_size=5)
    together = lifter.lift_tracks(tracks)
    for tr, got in zip(tracks, together, strict=True):
        np.testing.assert_allclose(got, lifter.lift_track(tr), atol=1e-6)


def test_flip_tta_averages_the_mirrored_prediction():
    track = smooth_track(50)
    out = Lifter(RightHipBias(), T=T, flip=True).lift_track(track)
    want = expected(track)
    want[:, 1, 0] += 0.05  # half of the bias stays on the right hip
    want[:, 4, 0] -= 0.05  # the mirrored half lands, negated, on the left hip
    np.testing.assert_allclose(out, want, atol=1e-6)
    perm = flip_permutation()
    assert perm[1] == 4 and perm[4] == 1


def test_nan_gaps_split_segments_and_stay_nan():
    track = smooth_track(120)
    track[30:45] = np.nan  # person absent
    track[100:103, 3, :2] = np.nan  # a frame with a missing joint counts as absent too
    track[60:62, :, 2] = np.nan  # unknown confidence: present, fed as 0
    assert valid_segments(track) == [(0, 30), (45, 100), (103, 120)]
    model = RootZeroIdentity()
    out = Lifter(model, T=T, flip=False).lift_track(track)
    absent = np.zeros(120, bool)
    absent[30:45] = absent[100:103] = True
    assert np.isnan(out[absent]).all()
    want = expected(np.nan_to_num(track, nan=0.0))
    np.testing.assert_allclose(out[~absent], want[~absent], atol=1e-6)
    for x in model.seen:  # the model never sees NaN
        assert torch.isfinite(x).all()


def test_all_absent_track_gives_all_nan():
    track = np.full((10, 17, 3), np.nan, np.float32)
    model = RootZeroIdentity()
    out = Lifter(model, T=T).lift_track(track)
    assert np.isnan(out).all() and model.seen == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_follows_model_device_cuda():
    model = RootZeroIdentity().cuda()
    track = smooth_track(40)
    out = Lifter(model, T=T).lift_track(track)
    assert model.seen[0].device.type == "cuda"
    np.testing.assert_allclose(out, expected(track), atol=1e-5)


# ------------------------------------------------------------------------- camera -> world


def test_rotation_axes():
    r0 = camera_to_world_rotation(0.0)
    np.testing.assert_allclose(r0 @ [0, -1, 0], [0, 0, 1])  # camera up -> world up
    np.testing.assert_allclose(r0 @ [0, 0, 1], [0, 1, 0])  # optical axis -> forward
    np.testing.assert_allclose(r0 @ [1, 0, 0], [1, 0, 0])
    r = camera_to_world_rotation(10.0)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(r), 1.0)
    ahead = r @ [0, 0, 1]  # the camera looks down by 10 degrees
    assert np.isclose(np.degrees(np.arctan2(-ahead[2], ahead[1])), 10.0)


def _gt_walk(h36m_mini) -> np.ndarray:
    """S1 walking (world, z up) moved in front of our camera: feet on z = 0, ~5 m ahead."""
    g = h36m_mini["S1/Walking 1"][::2].astype(np.float64)
    g = g - np.array([g[:, 0, 0].mean(), g[:, 0, 1].mean(), 0.0])
    g[..., 1] += 5.0
    low = np.fmin(g[:, 3, 2], g[:, 6, 2])
    g[..., 2] -= np.percentile(low, 5.0)
    return g


def test_to_world_recovers_a_projected_h36m_walk(h36m_mini):
    world = _gt_walk(h36m_mini)
    size, tilt, cam_h = (1280, 720), 10.0, 1.6
    R = camera_to_world_rotation(tilt)
    cam = (world - [0.0, 0.0, cam_h]) @ R  # world -> camera: R^T x, row-vector form
    f = max(size)
    uv = f * cam[..., :2] / cam[..., 2:3] + np.array(size) / 2.0
    rel = cam - cam[:, :1]
    F = world.shape[0]
    kp, sc = uv[:, None].astype(np.float32), np.ones((F, 1, 17), np.float32)
    cfg = WorldConfig(tilt_deg=tilt, standing_height_m=None, root_smooth_frames=1, same_floor=False)
    got = to_world(rel[:, None], kp, sc, size, cfg)[:, 0]
    # The floor is the ground ANKLE_ABOVE_FLOOR_M below the stance ankles (this walk's ankles
    # are floored at their 5th percentile): one constant height offset, the rest exact.
    dz = np.median(got[..., 2] - world[..., 2])
    assert abs(dz - ANKLE_ABOVE_FLOOR_M) < 0.03
    np.testing.assert_allclose(got - [0.0, 0.0, dz], world, atol=2e-3)
    # default smoothing of the root trajectory changes a walk by millimetres only
    cfg5 = WorldConfig(tilt_deg=tilt, standing_height_m=None, same_floor=False)
    got5 = to_world(rel[:, None], kp, sc, size, cfg5)[:, 0]
    assert np.abs(got5 - world - [0.0, 0.0, dz]).max() < 0.02
    # the default floor contact (lowest ankle on the floor every frame) moves it by centimetres
    gotc = to_world(rel[:, None], kp, sc, size, WorldConfig(tilt_deg=tilt, standing_height_m=None))
    assert np.median(np.abs(gotc[:, 0] - world - [0.0, 0.0, dz])) < 0.05
    # the stance foot stands on the floor
    low = np.fmin(got[:, 3, 2], got[:, 6, 2])
    assert 0.0 < np.percentile(low, 5.0) < 0.1


def test_to_world_without_root_keeps_root_above_origin_and_marks_absent(h36m_mini):
    world = _gt_walk(h36m_mini)[:50]
    rel = world - world[:, :1]
    rel_cam = rel @ camera_to_world_rotation(0.0)
    rel_cam[10:20] = np.nan
    kp = np.full((50, 1, 17, 2), np.nan, np.float32)
    got = to_world(
        rel_cam[:, None], kp, np.ones((50, 1, 17)), (640, 480), WorldConfig(place_root=False)
    )
    assert np.isnan(got[10:20]).all()
    ok = np.r_[0:10, 20:50]
    np.testing.assert_allclose(got[ok, 0, 0, :2], 0.0, atol=1e-6)
    assert np.all(got[ok, 0, 10, 2] > got[ok, 0, 0, 2])  # head above pelvis: z is up


def test_rescale_to_average_adult(h36m_mini):
    g = h36m_mini["S1/Walking 1"].astype(np.float64)
    rel = (g - g[:, :1]) * 2.5  # an off-scale prediction
    out = rescale_to_height(rel, 1.64)
    assert np.isclose(np.median(standing_height(out)), 1.64, rtol=1e-6)
    np.testing.assert_allclose(out / np.linalg.norm(out), rel / np.linalg.norm(rel), atol=1e-9)


# ------------------------------------------------------------------------- end to end (files)


def test_run_lift_writes_the_interface_files(tmp_path):
    """Two persons from a keypoint file, --person all: files, shapes, order, NaN, floor."""
    import json
    import stat

    from hgmamba_core.model import build_model
    from hgmamba_core.model.checkpoint import save_checkpoint
    from hgmamba_core.pipeline import LiftOptions, run_lift

    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "tiny.pt", build_model("tiny"))
    F = 60
    base = np.array(
        [[500, 500], [470, 500], [470, 650], [470, 800], [530, 500], [530, 650], [530, 800],
         [500, 420], [500, 340], [500, 300], [500, 250], [550, 340], [570, 420], [580, 500],
         [450, 340], [430, 420], [420, 500]], dtype=np.float32,
    )  # fmt: skip
    kp = np.repeat(base[None, None], F, axis=0).repeat(2, axis=1)
    kp[:, 1, :, 0] += 300  # a second person to the right
    kp[:, 1, :, :] = kp[:, 1] * 0.8 + 50  # ... smaller, so the first one is `main`
    conf = np.full((F, 2, 17, 1), 0.9, np.float32)
    conf[45:, 1] = 0.0  # the second person leaves for the last 15 frames
    f = tmp_path / "two.npz"
    np.savez(f, keypoints=np.concatenate([kp, conf], -1), fps=25.0, size=np.array([1000, 1000]))

    out = tmp_path / "out"
    rep = run_lift(
        LiftOptions(
            keypoints=f, checkpoint=ckpt, out=out, person="all", render=False, progress=False
        )
    )
    res = out / "two"
    names = sorted(p.name for p in res.iterdir())
    want = ["pose2d.npz", "pose3d.bvh", "pose3d.csv", "pose3d.html", "pose3d.json", "pose3d.npy"]
    assert names == [*want, "pose3d_p1.bvh"], names  # one BVH per person, the offline viewer
    assert rep.frames == F and rep.persons == 2 and rep.variant == "tiny"
    assert {"read 2D", "lift", "write"} <= set(rep.stages)
    for p in res.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) & 0o044  # readable by others, like any output
    with np.load(res / "pose2d.npz") as z:
        assert z["keypoints"].shape == (F, 2, 17, 2) and z["scores"].shape == (F, 2, 17)
        assert tuple(z["size"]) == (1000, 1000) and float(z["fps"]) == 25.0
        ids2d = z["track_ids"].tolist()
        assert np.isnan(z["keypoints"][45:, 1]).all()
    pose3d = np.load(res / "pose3d.npy")
    assert pose3d.shape == (F, 2, 17, 3)
    assert np.isfinite(pose3d[:, 0]).all() and np.isfinite(pose3d[:45, 1]).all()
    assert np.isnan(pose3d[45:, 1]).all()
    meta = json.loads((res / "pose3d.json").read_text())["metadata"]
    assert meta["track_ids"] == ids2d and meta["variant"] == "tiny" and meta["units"] == "m"
    cam = meta["meta"]["camera"]
    assert cam["method"] and cam["focal_source"] == "default max(w, h)" and cam["persons"] == 2
    assert meta["meta"]["camera_summary"] in rep.notes
    # one camera, one floor for both (an untrained lifter's random poses cannot stand on it,
    # so their feet are not checked here: tests/test_world.py does that with real poses)
    lo, hi = SCALE_RANGE  # the per-person depth correction's clip
    assert len(cam["person_scale"]) == 2 and all(lo <= k <= hi for k in cam["person_scale"])
    assert np.isfinite(cam["height_m"]) and np.isfinite(cam["pitch_deg"])


def test_run_lift_checks_before_any_work(tmp_path):
    from hgmamba_core.errors import HGMambaError
    from hgmamba_core.pipeline import LiftOptions, parse_exports, run_lift

    with pytest.raises(HGMambaError, match="unknown export format 'mov'"):
        parse_exports("npy,mov")
    assert parse_exports("json, npy,json") == ("json", "npy")
    video = tmp_path / "x.mp4"
    video.write_bytes(b"not checked yet")
    out = tmp_path / "out"
    with pytest.raises(HGMambaError, match="checkpoint not found"):
        run_lift(LiftOptions(video=video, checkpoint=tmp_path / "none.pt", out=out))
    assert not out.exists()
