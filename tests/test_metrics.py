"""Metrics on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from hgmamba_core import metrics


def _rot(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _poses(frames: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 200, size=(frames, 17, 3))


def test_mpjpe_known_offset_and_no_alignment():
    gt = _poses()
    pred = gt + np.array([30.0, 40.0, 0.0])  # every joint off by exactly 50 mm
    assert metrics.mpjpe(pred, gt) == pytest.approx(50.0)
    pred2 = gt.copy()
    pred2[:, :5] += np.array([0.0, 0.0, 170.0])  # 5 of 17 joints 170 mm off
    assert metrics.mpjpe(pred2, gt) == pytest.approx(170.0 * 5 / 17)


def test_p_mpjpe_zero_for_similarity_copy():
    gt = _poses()
    pred = np.stack(
        [
            2.5 * gt[f] @ _rot(np.array([1.0, 2.0, 3.0]), 0.3 + f).T + np.array([10.0, -50.0, 7.0])
            for f in range(gt.shape[0])
        ]
    )
    assert metrics.mpjpe(pred, gt) > 100
    assert metrics.p_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-6)
    assert metrics.n_mpjpe(2.0 * gt, gt) == pytest.approx(0.0, abs=1e-9)


def test_p_mpjpe_does_not_reflect():
    gt = _poses(3)
    mirrored = gt * np.array([-1.0, 1.0, 1.0])  # a reflection is not a rotation
    assert metrics.p_mpjpe(mirrored, gt) > 10.0
    # and alignment never makes things worse than the identity
    noisy = gt + np.random.default_rng(1).normal(0, 20, gt.shape)
    assert metrics.p_mpjpe(noisy, gt) <= metrics.mpjpe(noisy, gt)


def test_pck_auc_known_errors():
    gt = np.zeros((2, 17, 3))
    pred = gt.copy()
    pred[..., 0] = 100.0  # every joint 100 mm off
    pred[:, :4, 0] = 200.0  # 4 joints 200 mm off
    assert metrics.pck(pred, gt) == pytest.approx(13 / 17 * 100)
    assert metrics.pck(pred, gt, threshold=250) == pytest.approx(100.0)
    # thresholds 0..150 step 5 (31 values): 100 mm errors pass for t >= 100 (11 of 31)
    assert metrics.auc(pred, gt) == pytest.approx(11 / 31 * 13 / 17 * 100)
    assert metrics.auc(gt, gt) == pytest.approx(100.0)


def test_mpjve_constant_offset_is_zero():
    gt = _poses(6)
    assert metrics.mpjve(gt + 33.0, gt) == pytest.approx(0.0, abs=1e-9)
    pred = gt.copy()
    pred[3] += np.array([0.0, 30.0, 40.0])  # one frame off by 50: two velocity frames of 5
    assert metrics.mpjve(pred, gt) == pytest.approx(50.0 * 2 / 5)


def test_per_action_mean_is_over_actions():
    vals = np.array([10.0, 10.0, 10.0, 40.0])
    acts = ["Walking", "Walking", "Walking", "Sitting"]
    pa = metrics.per_action(vals, acts)
    assert pa == {"Sitting": 40.0, "Walking": 10.0}
    assert metrics.mean_over_actions(pa) == pytest.approx(25.0)


def test_shape_mismatch_is_user_error():
    from hgmamba_core.errors import HGMambaError

    with pytest.raises(HGMambaError):
        metrics.mpjpe(np.zeros((2, 17, 3)), np.zeros((3, 17, 3)))
