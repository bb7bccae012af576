"""One entry point from (--dataset, --data, --two-d, split) to clips, whatever the file format.

h36m: a folder with our files (h36m_3d_17j.npz, h36m_cameras.json, h36m_sh_2d.npz; --two-d gt|sh)
or with VideoPose3D's (data_3d_h36m.npz + h36m_cameras.json, and data_2d_h36m_<two_d>.npz for
--two-d other than gt, e.g. cpn_ft_h36m_dbb).
3dhp: a folder (or file) with data_train_3dhp.npz / data_test_3dhp.npz; 2D is always the files'.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from hgmamba_core.data.clips import PoseClip
from hgmamba_core.data.h36m import FILE_3D, FILE_CAMERAS, TEST_SUBJECTS, TRAIN_SUBJECTS, load_h36m
from hgmamba_core.data.mpi3dhp import (
    TEST_FILE,
    TRAIN_FILE,
    find_3dhp_file,
    load_3dhp_test,
    load_3dhp_train,
)
from hgmamba_core.data.vp3d import VP3D_FILE_3D, load_vp3d
from hgmamba_core.errors import HGMambaError

DATASETS = ("h36m", "3dhp")


def load_clips(
    dataset: str,
    data: str | os.PathLike,
    split: str,
    two_d: str = "gt",
    subjects: Iterable[str] | None = None,
    actions: Iterable[str] | None = None,
) -> list[PoseClip]:
    """Clips of the 'train' or 'test' split (subjects / 3DHP test sequences may be narrowed)."""
    if split not in ("train", "test"):
        raise HGMambaError(f"unknown split '{split}'")
    p = Path(data)
    if not p.exists():
        raise HGMambaError(f"data path not found: {p}")
    if dataset == "3dhp":
        if split == "train":
            return load_3dhp_train(find_3dhp_file(p, TRAIN_FILE))
        return load_3dhp_test(find_3dhp_file(p, TEST_FILE), subjects)
    if dataset != "h36m":
        raise HGMambaError(f"unknown dataset '{dataset}': use {' or '.join(DATASETS)}")
    if not p.is_dir():
        raise HGMambaError(f"--data for h36m must be a folder, got the file {p}")
    subs = (
        list(subjects) if subjects else list(TRAIN_SUBJECTS if split == "train" else TEST_SUBJECTS)
    )
    if (p / FILE_3D).is_file() or not (p / VP3D_FILE_3D).is_file():
        return load_h36m(p, subs, two_d, actions)
    cams = p / FILE_CAMERAS
    if not cams.is_file():
        raise HGMambaError(f"VideoPose3D files need camera parameters: {cams} is missing")
    path_2d = None
    if two_d != "gt":
        path_2d = p / f"data_2d_h36m_{two_d}.npz"
        if not path_2d.is_file():
            raise HGMambaError(f"2D file missing: {path_2d}")
    return load_vp3d(p / VP3D_FILE_3D, cams, subs, path_2d, actions)
