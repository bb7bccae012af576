"""Human3.6M reader: clips, split, action names, SH vs projected GT agreement."""

from __future__ import annotations

import numpy as np
import pytest
from h36m_tmpdata import write_mini_h36m

from hgmamba_core.data.h36m import action_of, load_h36m, matches_actions
from hgmamba_core.errors import HGMambaError


def test_action_names():
    assert action_of("Walking 1") == "Walking"
    assert action_of("Walking") == "Walking"
    assert action_of("SittingDown 2") == "SittingDown"
    assert matches_actions("Walking 1", ["Walking"])
    assert not matches_actions("WalkTogether 1", ["walking"])
    assert matches_actions("Walking 1", ["Walking 1"]) and not matches_actions(
        "Walking", ["Walking 1"]
    )


def test_mini_clips_gt_and_sh(h36m_dir, h36m_mini, tmp_path):
    data = write_mini_h36m(h36m_dir, tmp_path / "h36m")
    gt = load_h36m(data, ["S1", "S9"], "gt")
    assert len(gt) == 8  # 2 sequences x 4 cameras
    clip = next(c for c in gt if c.name == "S1/Walking 1.54138969")
    assert clip.action == "Walking" and clip.subject == "S1" and clip.size == (1000, 1002)
    assert np.abs(clip.keypoints - h36m_mini["S1/Walking 1.54138969"]).max() < 1e-3
    assert np.all(clip.joints3d[..., 2] > 1.0)  # metres in front of the camera
    sh = load_h36m(data, ["S9", "S1"], "sh")
    assert [c.name for c in sh] == ["S9/Directions.54138969", "S1/Walking 1.54138969"]
    # SH detections (MPII mapped to H36M-17) agree with projected GT to within ~15 px on average
    # (README: 14.87 px S1 Walking 1, 11.20 px S9 Directions over the 16 MPII joints).
    by_name = {c.name: c for c in gt}
    for c in sh:
        err = np.linalg.norm(c.keypoints - by_name[c.name].keypoints, axis=-1)
        mean16 = np.delete(err, 7, axis=1).mean()  # spine (7) is derived, not detected
        assert 8.0 < mean16 < 16.0, (c.name, mean16)
        assert err.mean() < 16.0


def test_action_filter_and_errors(h36m_dir, tmp_path):
    data = write_mini_h36m(h36m_dir, tmp_path / "h36m")
    assert {c.action for c in load_h36m(data, ["S1", "S9"], actions=["Walking"])} == {"Walking"}
    with pytest.raises(HGMambaError, match="no Human3.6M sequences"):
        load_h36m(data, ["S9"], actions=["Eating"])
    with pytest.raises(HGMambaError, match="h36m_sh_2d.npz"):
        (data / "h36m_sh_2d.npz").unlink()
        load_h36m(data, ["S9"], "sh")
    with pytest.raises(HGMambaError, match="folder not found"):
        load_h36m(tmp_path / "missing", ["S9"])
    with pytest.raises(HGMambaError, match="unknown subject"):
        load_h36m(data, ["S42"])


def test_full_sh_vs_gt_projection_error(h36m_dir):
    """All S9 clips: SH vs projected GT, 16 detected joints. README: S9 15.3 px mean."""
    if not (h36m_dir / "h36m_sh_2d.npz").exists():
        pytest.skip("full h36m files absent")
    gt = {c.name: c.keypoints for c in load_h36m(h36m_dir, ["S9"], "gt")}
    errs = [
        np.delete(np.linalg.norm(c.keypoints - gt[c.name], axis=-1), 7, axis=1)
        for c in load_h36m(h36m_dir, ["S9"], "sh")
    ]
    mean = float(np.concatenate(errs).mean())
    assert 12.0 < mean < 18.0, mean
