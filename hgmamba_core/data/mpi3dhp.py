"""MPI-INF-3DHP in the P-STMO npz format (used by MotionAGFormer and MotionBERT).

- `data_train_3dhp.npz`: `data` = {(subject, sequence): [{camera: {'data_3d': (N, 17, 3) mm,
  'data_2d': (N, 17, 2) px}}]}, images 2048 x 2048.
- `data_test_3dhp.npz`: `data` = {'TS1'..'TS6': {'data_3d', 'data_2d', 'valid' (N,)}},
  TS1-TS4 2048 x 2048, TS5-TS6 1920 x 1080. Only frames with valid = 1 are evaluated.
File joint order is 3DHP-17 (root = joint 14, pelvis); every clip is reordered to H36M-17 with
`skeleton.mpi3dhp_to_h36m` (root becomes joint 0), so H36M-trained and 3DHP-trained lifters read
the same layout. 3D is converted to metres (the files' camera-frame millimetres / 1000).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from hgmamba_core.data.clips import PoseClip
from hgmamba_core.data.safe_npz import load_npz_dicts, require_array, require_dict
from hgmamba_core.errors import HGMambaError
from hgmamba_core.skeleton import mpi3dhp_to_h36m

TRAIN_FILE = "data_train_3dhp.npz"
TEST_FILE = "data_test_3dhp.npz"
TEST_SEQUENCES: tuple[str, ...] = ("TS1", "TS2", "TS3", "TS4", "TS5", "TS6")


def test_image_size(sequence: str) -> tuple[int, int]:
    """(w, h) of a test sequence's images."""
    return (1920, 1080) if sequence in ("TS5", "TS6") else (2048, 2048)


def _entry(d: dict, where: str) -> tuple[np.ndarray, np.ndarray]:
    d = require_dict(d, where)
    for key in ("data_3d", "data_2d"):
        if key not in d:
            raise HGMambaError(f"{where}: missing '{key}'")
    j3 = require_array(d["data_3d"], f"{where}['data_3d']", ndim=3, last=3)
    j2 = require_array(d["data_2d"], f"{where}['data_2d']", ndim=3, last=2)
    if j3.shape[:2] != j2.shape[:2] or j3.shape[1] != 17:
        raise HGMambaError(f"{where}: 3D {j3.shape} and 2D {j2.shape} must both be (N, 17, .)")
    return mpi3dhp_to_h36m(j3).astype(np.float32) / 1000.0, mpi3dhp_to_h36m(j2).astype(np.float32)


def _data(path: Path) -> dict:
    z = load_npz_dicts(path)
    if "data" not in z:
        raise HGMambaError(f"{path}: no 'data' entry (not a P-STMO 3DHP file)")
    return require_dict(z["data"], f"{path.name}['data']")


def load_3dhp_train(path: str | os.PathLike) -> list[PoseClip]:
    """Every (subject, sequence, camera) of the training file as a clip."""
    p = Path(path)
    clips: list[PoseClip] = []
    for key, value in sorted(_data(p).items(), key=lambda kv: str(kv[0])):
        if not (isinstance(key, tuple) and len(key) == 2):
            raise HGMambaError(f"{p.name}: keys must be (subject, sequence), got {key!r}")
        subject, seq = (str(k) for k in key)
        if not (isinstance(value, (list, tuple)) and len(value) >= 1):
            raise HGMambaError(f"{p.name}[{key}]: expected a one-element list of camera dicts")
        for cam, entry in sorted(
            require_dict(value[0], f"{p.name}[{key}][0]").items(), key=lambda kv: str(kv[0])
        ):
            j3, j2 = _entry(entry, f"{p.name}[{key}][0][{cam}]")
            clips.append(PoseClip(f"{subject}/{seq}.{cam}", subject, seq, j2, j3, (2048, 2048)))
    if not clips:
        raise HGMambaError(f"{p}: no training sequences")
    return clips


def load_3dhp_test(
    path: str | os.PathLike, sequences: Iterable[str] | None = None
) -> list[PoseClip]:
    """Test sequences TS1..TS6 (or the requested ones) with their valid-frame masks."""
    p = Path(path)
    data = _data(p)
    wanted = (
        [s.strip() for s in sequences if s.strip()]
        if sequences
        else [s for s in TEST_SEQUENCES if s in data]
    )
    clips: list[PoseClip] = []
    for seq in wanted:
        if seq not in data:
            raise HGMambaError(
                f"{p.name}: no test sequence '{seq}' (has {', '.join(map(str, data))})"
            )
        entry = require_dict(data[seq], f"{p.name}[{seq}]")
        j3, j2 = _entry(entry, f"{p.name}[{seq}]")
        valid = entry.get("valid")
        if valid is None:
            valid = np.ones(j3.shape[0], bool)
        valid = (
            require_array(np.asarray(valid).reshape(-1), f"{p.name}[{seq}]['valid']", ndim=1) > 0
        )
        clips.append(PoseClip(seq, seq, seq, j2, j3, test_image_size(seq), valid=valid))
    if not clips:
        raise HGMambaError(f"{p}: no test sequences")
    return clips


def find_3dhp_file(data: str | os.PathLike, name: str) -> Path:
    """`data` is the file itself or a folder holding `name`."""
    p = Path(data)
    if p.is_dir():
        p = p / name
    if not p.is_file():
        raise HGMambaError(f"MPI-INF-3DHP file missing: {p}")
    return p
