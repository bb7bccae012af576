"""The shipped default on the real demo clip: walkers upright, on the floor, limbs of one length.

The demo (OpenCV's vtest.avi, an elevated view of ~80 px walkers) is what `hgmamba lift` with
no argument shows a newcomer. Measured 2026-12-03 (README, "3D on real clips"): with the
default wild weights the six people lifted for >= 30 frames have median trunk angles 4.6-21.4°
from world up (median 11.5°), limb-bone CV 3.7-13.9 % (median 7.0 %), lowest ankle p95 <= 0.09
m above the floor; the benchmark file (exact 2D only) gives 4.9-32.6° (median 17.6°), CV median
19.8 % and a person floating at 0.30 m, so these bounds tell the two apart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hgmamba_core import HGMamba
from hgmamba_core.skeleton import (
    H36M_LIMB_BONES,
    H36M_PELVIS,
    H36M_THORAX,
)

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "assets" / "demo" / "vtest_10s.mp4"
BONES = H36M_LIMB_BONES
ANKLES = (3, 6)  # H36M r_ankle, l_ankle


def person_numbers(j: np.ndarray) -> tuple[float, float, float]:
    """(F, 17, 3) world metres, z up -> (median trunk angle from up in degrees, median limb-bone
    CV in %, 95th percentile of the lower ankle's height in metres)."""
    trunk = j[:, H36M_THORAX] - j[:, H36M_PELVIS]
    angle = np.degrees(np.arccos(trunk[:, 2] / np.linalg.norm(trunk, axis=-1)))
    bones = np.stack([np.linalg.norm(j[:, c] - j[:, p], axis=-1) for c, p in BONES], axis=1)
    low = np.fmin(j[:, ANKLES[0], 2], j[:, ANKLES[1], 2])
    cv = 100 * np.median(bones.std(0) / bones.mean(0))
    return float(np.median(angle)), float(cv), float(np.percentile(low, 95))


@pytest.mark.slow
def test_demo_walkers_are_upright_on_the_floor_and_rigid():
    if not (REPO / "assets" / "weights" / "hgmamba_xs_wild.pt").is_file():
        pytest.skip("shipped wild weights missing")
    model = HGMamba("xs", device="cpu")
    assert Path(model.checkpoint).name == "hgmamba_xs_wild.pt"  # lift's default for videos
    res = model.lift(DEMO, person="all")
    rows = []
    for p in range(res.poses3d.shape[1]):
        j = res.poses3d[:, p].astype(np.float64)
        j = j[np.isfinite(j).all((1, 2))]
        if len(j) >= 30:
            rows.append(person_numbers(j))
    assert len(rows) >= 5, rows  # the demo's walkers (6 measured)
    trunk, cv, ankle = np.array(rows).T
    assert np.median(trunk) <= 15.0 and trunk.max() <= 25.0, trunk
    assert np.median(cv) <= 10.0, cv
    assert ankle.max() <= 0.15, ankle
