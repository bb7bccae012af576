"""Shared test fixtures: paths to ../shared data, offline settings for Ultralytics."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
H36M_DIR = SHARED / "data" / "h36m"
MEDIA_DIR = SHARED / "media"
YOLO_WEIGHTS = REPO / "assets" / "weights" / "yolo11n-pose.pt"

# Never touch the network or the home directory from tests.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault(
    "YOLO_CONFIG_DIR", str(Path(os.environ.get("TMPDIR", "/tmp")) / "hgmamba-yolo-cfg")
)


@pytest.fixture(scope="session", autouse=True)
def _scan_kernel_built() -> None:
    """Build the CPU kernels (blocking) before any test: the CLI tests compare stderr line by
    line, and a lift with no eval kernel in the cache would add the one-line "compiling the
    CPU eval kernel" notice at a moment that depends on test order; the training scan's torch
    extension is built here too. tests/test_first_run.py covers first runs with caches of its
    own."""
    from hgmamba_core.ssm import fused, mixer_kernel

    mixer_kernel.load()
    fused.load_extension()


@pytest.fixture(scope="session")
def h36m_dir() -> Path:
    if not (H36M_DIR / "h36m_mini.npz").exists():
        pytest.skip(
            f"Human3.6M files not found in {H36M_DIR} (they live in ../shared, never in the repo)"
        )
    return H36M_DIR


@pytest.fixture(scope="session")
def h36m_mini(h36m_dir: Path):
    import numpy as np

    with np.load(h36m_dir / "h36m_mini.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="session")
def untrained_xs_ckpt(tmp_path_factory) -> Path:
    """An untrained HGMamba-XS saved as `hgmamba train` would: for tests of the plumbing."""
    import torch

    from hgmamba_core.model import build_model
    from hgmamba_core.model.checkpoint import save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "xs_untrained.pt"
    return save_checkpoint(path, build_model("xs"), meta={"trained": False})
