"""Cleaning of 2D tracks: masking, gap interpolation, segment splitting, One-Euro smoothing."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.cleaning import (
    INTERP_CONF_FACTOR,
    clean_track,
    default_max_gap,
    fill_segment,
    find_segments,
    mask_low_confidence,
    one_euro,
)
from detectors.front_end import finish_tracks, segments_from_poses
from hgmamba_core.skeleton import H36M_PARENTS


def _linear_track(n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Every joint moves linearly: x = 10 + 2t + j, y = 100 - t + 3j."""
    t = np.arange(n, dtype=np.float32)[:, None]
    j = np.arange(17, dtype=np.float32)[None, :]
    kp = np.stack([10 + 2 * t + j, 100 - t + 3 * j], axis=-1)
    return kp.astype(np.float32), np.full((n, 17), 0.9, np.float32)


def test_default_max_gap_is_half_a_second():
    assert default_max_gap(30) == 15
    assert default_max_gap(10) == 5
    assert default_max_gap(1) == 1
    assert default_max_gap(0) == 15  # unknown fps: 30 assumed


def test_mask_low_confidence_sets_nan():
    kp, sc = _linear_track(3)
    sc[1, 4] = 0.1
    sc[2, 5] = np.nan
    k2, s2 = mask_low_confidence(kp, sc, 0.3)
    assert np.isnan(k2[1, 4]).all() and np.isnan(s2[1, 4])
    assert np.isnan(k2[2, 5]).all()
    assert np.isfinite(k2[0]).all()
    assert np.isfinite(kp).all()  # input untouched


def test_find_segments_merges_short_gaps_and_splits_long_ones():
    present = np.zeros(30, bool)
    present[2:10] = True
    present[12:15] = True  # gap of 2 frames -> merged
    present[25:28] = True  # gap of 10 frames -> split
    assert find_segments(present, max_gap=3) == [(2, 15), (25, 28)]
    assert find_segments(present, max_gap=1) == [(2, 10), (12, 15), (25, 28)]
    assert find_segments(present, max_gap=10) == [(2, 28)]
    assert find_segments(np.zeros(5, bool), 3) == []


def test_interpolation_is_exact_on_linear_motion_and_conf_policy():
    kp, sc = _linear_track(30)
    raw = kp.copy()
    kp[10:13] = np.nan  # whole person missing 3 frames
    sc[10:13] = np.nan
    kp[20:28, 13] = np.nan  # left wrist occluded 8 frames (> max_gap) inside the track
    sc[20:28, 13] = np.nan
    out, conf, observed, segs = clean_track(kp, sc, max_gap=5, threshold=0.3)
    assert segs == [(0, 30)]
    np.testing.assert_allclose(out, raw, atol=1e-4)
    np.testing.assert_allclose(conf[10:13], INTERP_CONF_FACTOR * 0.9, atol=1e-6)
    assert (conf[20:28, 13] == 0).all()  # long joint gap: filled but marked a guess
    assert not observed[10:13].any() and not observed[20:28, 13].any()
    assert observed[:10].all()


def test_long_gap_splits_and_leaves_nan_outside_segments():
    kp, sc = _linear_track(40)
    kp[:3] = np.nan  # absent at the start
    sc[:3] = np.nan
    kp[15:30] = np.nan  # 15 frames: longer than max_gap
    sc[15:30] = np.nan
    out, conf, _, segs = clean_track(kp, sc, max_gap=5)
    assert segs == [(3, 15), (30, 40)]
    assert np.isnan(out[:3]).all() and np.isnan(out[15:30]).all() and np.isnan(conf[15:30]).all()
    assert np.isfinite(out[3:15]).all() and np.isfinite(out[30:]).all()


def test_frames_with_too_few_joints_count_as_missing():
    kp, sc = _linear_track(10)
    sc[4, 3:] = 0.05  # only 3 confident joints in frame 4
    out, conf, observed, segs = clean_track(kp, sc, max_gap=2, min_joints=5)
    assert segs == [(0, 10)]
    assert not observed[4].any()
    assert np.isfinite(out[4]).all()


def test_joint_never_seen_sits_on_its_parent_with_zero_confidence():
    kp, sc = _linear_track(6)
    kp[:, 16] = np.nan  # right wrist never detected
    sc[:, 16] = np.nan
    out, conf = fill_segment(kp, sc, max_gap=3)
    np.testing.assert_allclose(out[:, 16], out[:, H36M_PARENTS[16]])
    assert (conf[:, 16] == 0).all()


def test_all_missing_track_gives_no_segment():
    kp = np.full((8, 17, 2), np.nan, np.float32)
    sc = np.full((8, 17), np.nan, np.float32)
    out, conf, observed, segs = clean_track(kp, sc, max_gap=3)
    assert segs == [] and np.isnan(out).all() and not observed.any()


def test_one_euro_reduces_jitter_and_follows_motion():
    rng = np.random.default_rng(0)
    n, fps = 200, 30.0
    t = np.arange(n) / fps
    for speed, worst in ((0.0, 0.6), (0.2, 1.0)):  # still joint; slow drift (units/s)
        clean = np.stack([speed * t, np.zeros(n)], -1)[:, None, :].repeat(17, 1)
        noisy = clean + rng.normal(0, 0.005, clean.shape)
        smooth = one_euro(noisy, fps)
        assert smooth.shape == noisy.shape
        ratio = np.abs(smooth - clean)[20:].mean() / np.abs(noisy - clean)[20:].mean()
        assert ratio < worst, (speed, ratio)


def test_finish_tracks_remaps_coco_and_smoothing_is_optional():
    rng = np.random.default_rng(1)
    base = np.zeros((17, 2), np.float32)
    base[:, 0] = np.linspace(100, 140, 17)
    base[:, 1] = np.linspace(50, 250, 17)  # COCO order runs head to feet
    kp = base[None, None].repeat(20, 0) + rng.normal(0, 1.0, (20, 1, 17, 2)).astype(np.float32)
    sc = np.full((20, 1, 17), 0.8, np.float32)
    kp[7:9] = np.nan
    sc[7:9] = np.nan
    poses, segs, observed = finish_tracks(
        kp, sc, np.array([4]), layout="coco", fps=25.0, size=(320, 240), source="x"
    )
    assert poses.layout == "h36m" and poses.keypoints.shape == (20, 1, 17, 2)
    assert [(s.person, s.track_id, s.start, s.stop) for s in segs] == [(0, 4, 0, 20)]
    assert segments_from_poses(poses) == segs
    assert np.isfinite(poses.keypoints).all()
    smoothed, _, _ = finish_tracks(
        kp, sc, np.array([4]), layout="coco", fps=25.0, size=(320, 240), source="x", smooth=True
    )
    jitter = np.abs(np.diff(poses.keypoints, axis=0)).mean()
    jitter_s = np.abs(np.diff(smoothed.keypoints, axis=0)).mean()
    assert jitter_s < jitter


def test_finish_tracks_rejects_unknown_layout():
    from hgmamba_core.errors import HGMambaError

    kp = np.zeros((2, 1, 17, 2), np.float32)
    with pytest.raises(HGMambaError, match="layout"):
        finish_tracks(
            kp, np.ones((2, 1, 17)), np.array([0]), layout="mpii", fps=1, size=(9, 9), source=""
        )
