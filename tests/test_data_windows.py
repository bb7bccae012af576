"""Windows: normalization, flip, edge padding, deterministic training plan, exact test tiling."""

from __future__ import annotations

import numpy as np
import pytest

from hgmamba_core.data.clips import PoseClip
from hgmamba_core.data.windows import (
    ClipStore,
    TrainWindows,
    clip_inputs,
    clip_targets,
    flip_poses,
    tile_clip,
    window_frames,
)
from hgmamba_core.poses import normalize_screen
from hgmamba_core.skeleton import H36M_LEFT, H36M_RIGHT


def _clip(n: int, name: str = "S1/Walking.1", seed: int = 0) -> PoseClip:
    rng = np.random.default_rng(seed)
    j3 = rng.normal(0, 0.3, (n, 17, 3)) + np.array([0.0, 0.0, 5.0])
    kp = rng.uniform(0, 1000, (n, 17, 2))
    return PoseClip(name, "S1", "Walking", kp, j3, (1000, 1002))


def test_inputs_targets_units():
    clip = _clip(20)
    x = clip_inputs(clip)
    assert x.shape == (20, 17, 3) and np.all(x[..., 2] == 1.0)
    np.testing.assert_allclose(x[..., :2], normalize_screen(clip.keypoints, 1000, 1002))
    y = clip_targets(clip)
    assert np.all(y[:, 0] == 0)
    np.testing.assert_allclose(y[:, 5], clip.joints3d[:, 5] - clip.joints3d[:, 0], atol=1e-6)


def test_flip_mirrors_image_and_swaps_sides():
    clip = _clip(4)
    x = clip_inputs(clip)
    mirrored = clip.keypoints.copy()
    mirrored[..., 0] = 1000 - mirrored[..., 0]
    fx = flip_poses(x)
    np.testing.assert_allclose(
        fx[:, list(H36M_LEFT), :2],
        normalize_screen(mirrored, 1000, 1002)[:, list(H36M_RIGHT)],
        atol=1e-6,
    )
    np.testing.assert_array_equal(flip_poses(fx), x)


def test_window_frames_edge_replication():
    idx = window_frames(np.array([0, 8]), 5, np.array([10, 10]), frame_stride=2)
    np.testing.assert_array_equal(idx, [[0, 2, 4, 6, 8], [8, 9, 9, 9, 9]])


@pytest.mark.parametrize("n,t,k", [(1, 9, 1), (27, 27, 1), (100, 27, 1), (101, 9, 3), (5, 9, 4)])
def test_tiling_predicts_every_frame_once(n, t, k):
    idx, own = tile_clip(n, t, k)
    assert idx.shape[1] == t and own.shape == idx.shape
    counts = np.bincount(idx[own], minlength=n)
    np.testing.assert_array_equal(counts, np.ones(n))
    # frames inside a window are consecutive in steps of k (or repeat the edge frame)
    d = np.diff(idx, axis=1)
    assert np.all((d == k) | (d == 0))


def test_train_windows_deterministic_and_flipped():
    store = ClipStore.from_clips([_clip(50, "a"), _clip(23, "b", 1)])
    tw = TrainWindows(store, length=9, window_stride=9, frame_stride=1, flip=True)
    assert tw.num_windows == 6 + 3
    b1 = list(tw.batches(epoch=0, seed=7, batch_size=4))
    b2 = list(tw.batches(epoch=0, seed=7, batch_size=4))
    assert len(b1) == tw.steps_per_epoch(4) == 2
    for a, b in zip(b1, b2, strict=True):
        np.testing.assert_array_equal(a.inputs, b.inputs)
    # mid-epoch resume yields the same remaining batches
    np.testing.assert_array_equal(list(tw.batches(0, 7, 4, start_step=1))[0].targets, b1[1].targets)
    other = list(tw.batches(epoch=1, seed=7, batch_size=4))
    assert not np.array_equal(other[0].inputs, b1[0].inputs)
    # every window is either a plain or a flipped copy of real consecutive frames
    for batch in b1:
        assert batch.inputs.shape == (4, 9, 17, 3) and batch.targets.shape == (4, 9, 17, 3)
        for x in batch.inputs:
            hits = [
                np.flatnonzero(np.all(np.isclose(store.inputs, cand[0]), axis=(1, 2)))
                for cand in (x, flip_poses(x))
            ]
            assert sum(len(h) for h in hits) == 1
