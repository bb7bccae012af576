"""Camera model against the projected ground truth stored in h36m_mini.npz."""

from __future__ import annotations

import numpy as np
import pytest

from hgmamba_core.camera import (
    Camera,
    camera_to_world,
    load_h36m_cameras,
    project,
    world_to_camera,
)
from hgmamba_core.errors import HGMambaError


@pytest.mark.parametrize("seq", ["S1/Walking 1", "S9/Directions"])
def test_projection_matches_mini_fixture(h36m_dir, h36m_mini, seq):
    subject = seq.split("/")[0]
    cam = next(
        c for c in load_h36m_cameras(h36m_dir / "h36m_cameras.json")[subject] if c.id == "54138969"
    )
    x_cam = world_to_camera(h36m_mini[seq], cam)
    assert np.all(x_cam[..., 2] > 0)
    uv = project(x_cam, cam)
    assert uv.shape == (600, 17, 2)
    assert np.abs(uv - h36m_mini[f"{seq}.54138969"]).max() < 1e-3
    np.testing.assert_allclose(camera_to_world(x_cam, cam), h36m_mini[seq], atol=1e-5)


def test_distortion_terms_are_used():
    base = dict(id="x", res=[1000, 1000], f=[1000, 1000], c=[500, 500], R=np.eye(3), T=[0, 0, 0])
    pt = np.array([[0.3, -0.2, 1.0]])
    plain = project(pt, Camera.from_dict({**base, "k": [0, 0, 0], "p": [0, 0]}))
    np.testing.assert_allclose(plain, [[800.0, 300.0]])
    # radial only: xd = x (1 + k1 r2), r2 = 0.13
    rad = project(pt, Camera.from_dict({**base, "k": [0.1, 0, 0], "p": [0, 0]}))
    np.testing.assert_allclose(rad, [[500 + 1000 * 0.3 * 1.013, 500 - 1000 * 0.2 * 1.013]])
    # tangential, H36M order: tan = p0*y + p1*x; xd = x (1 + tan) + [p1, p0] r2
    tan = project(pt, Camera.from_dict({**base, "k": [0, 0, 0], "p": [0.01, 0.02]}))
    t = 0.01 * -0.2 + 0.02 * 0.3
    np.testing.assert_allclose(
        tan,
        [[500 + 1000 * (0.3 * (1 + t) + 0.02 * 0.13), 500 + 1000 * (-0.2 * (1 + t) + 0.01 * 0.13)]],
    )


def test_missing_camera_file(tmp_path):
    with pytest.raises(HGMambaError, match="not found"):
        load_h36m_cameras(tmp_path / "nope.json")
