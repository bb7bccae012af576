"""Human3.6M in VideoPose3D's files: `data_3d_h36m.npz` and `data_2d_h36m_<name>.npz`.

- `data_3d_h36m.npz`: `positions_3d` = {subject: {sequence: (N, 32, 3) world metres}}; we keep
  the 17 joints VideoPose3D keeps (VP3D_17_FROM_32), which are the H36M-17 order.
- `data_2d_h36m_<name>.npz`: `positions_2d` = {subject: {sequence: [4 x (N, 17, 2) pixels]}} in
  camera order 54138969, 55011271, 58860488, 60457274, plus `metadata` (layout, symmetry).
These files hold no cameras: extrinsics come from our `h36m_cameras.json` (same four cameras).
As in VideoPose3D, 3D longer than the 2D is cut to the 2D length.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from hgmamba_core.camera import load_h36m_cameras
from hgmamba_core.data.clips import PoseClip
from hgmamba_core.data.h36m import action_of, matches_actions, project_sequence
from hgmamba_core.data.safe_npz import load_npz_dicts, require_array, require_dict
from hgmamba_core.errors import HGMambaError

VP3D_17_FROM_32: tuple[int, ...] = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
VP3D_FILE_3D = "data_3d_h36m.npz"


def read_positions_3d(path: str | os.PathLike) -> dict[str, dict[str, np.ndarray]]:
    """{subject: {sequence: (N, 17, 3) float32 world metres}} from data_3d_h36m.npz."""
    z = load_npz_dicts(path)
    if "positions_3d" not in z:
        raise HGMambaError(f"{path}: no 'positions_3d' entry (not a VideoPose3D 3D file)")
    out: dict[str, dict[str, np.ndarray]] = {}
    for subject, seqs in require_dict(z["positions_3d"], "positions_3d").items():
        out[str(subject)] = {}
        for seq, arr in require_dict(seqs, f"positions_3d[{subject}]").items():
            a = require_array(arr, f"positions_3d[{subject}][{seq}]", ndim=3, last=3)
            if a.shape[1] == 32:
                a = a[:, list(VP3D_17_FROM_32)]
            elif a.shape[1] != 17:
                raise HGMambaError(
                    f"positions_3d[{subject}][{seq}]: {a.shape[1]} joints, expected 32 or 17"
                )
            out[str(subject)][str(seq)] = a.astype(np.float32)
    return out


def read_positions_2d(
    path: str | os.PathLike,
) -> tuple[dict[str, dict[str, list[np.ndarray]]], dict]:
    """({subject: {sequence: [per-camera (N, 17, 2) pixels]}}, metadata) from data_2d_h36m_*.npz."""
    z = load_npz_dicts(path)
    if "positions_2d" not in z:
        raise HGMambaError(f"{path}: no 'positions_2d' entry (not a VideoPose3D 2D file)")
    meta = z.get("metadata", {})
    meta = require_dict(meta, "metadata") if meta is not None else {}
    out: dict[str, dict[str, list[np.ndarray]]] = {}
    for subject, seqs in require_dict(z["positions_2d"], "positions_2d").items():
        out[str(subject)] = {}
        for seq, cams in require_dict(seqs, f"positions_2d[{subject}]").items():
            if not isinstance(cams, (list, tuple)):
                raise HGMambaError(f"positions_2d[{subject}][{seq}]: expected a list of cameras")
            out[str(subject)][str(seq)] = [
                require_array(a, f"positions_2d[{subject}][{seq}][{i}]", ndim=3, last=2).astype(
                    np.float32
                )
                for i, a in enumerate(cams)
            ]
    if meta.get("layout_name", "h36m") != "h36m" or int(meta.get("num_joints", 17)) != 17:
        raise HGMambaError(
            f"{path}: 2D layout {meta.get('layout_name')!r} is not the H36M-17 layout"
        )
    return out, meta


def load_vp3d(
    path_3d: str | os.PathLike,
    cameras_json: str | os.PathLike,
    subjects: Iterable[str],
    path_2d: str | os.PathLike | None = None,
    actions: Iterable[str] | None = None,
) -> list[PoseClip]:
    """Clips from VideoPose3D files; 2D from `path_2d`, or the projected GT when it is None."""
    pos3d = read_positions_3d(path_3d)
    pos2d = read_positions_2d(path_2d)[0] if path_2d is not None else None
    cams = load_h36m_cameras(cameras_json)
    actions = list(actions) if actions else None
    clips: list[PoseClip] = []
    for subject in [s.strip() for s in subjects if s.strip()]:
        if subject not in pos3d:
            raise HGMambaError(f"subject {subject} not in {Path(path_3d).name}")
        if subject not in cams:
            raise HGMambaError(f"no cameras for subject {subject} in {cameras_json}")
        for seq in sorted(pos3d[subject]):
            if not matches_actions(seq, actions):
                continue
            world = pos3d[subject][seq]
            for ci, cam in enumerate(cams[subject]):
                kp, x_cam = project_sequence(world, cam)
                if pos2d is not None:
                    det = pos2d.get(subject, {}).get(seq)
                    if det is None or ci >= len(det):
                        continue
                    n = det[ci].shape[0]
                    if n > x_cam.shape[0]:
                        raise HGMambaError(
                            f"{subject}/{seq} cam {cam.id}: 2D has more frames than 3D"
                        )
                    kp, x_cam = det[ci], x_cam[:n]
                clips.append(
                    PoseClip(
                        name=f"{subject}/{seq}.{cam.id}",
                        subject=subject,
                        action=action_of(seq),
                        keypoints=kp,
                        joints3d=x_cam,
                        size=cam.res,
                    )  # fmt: skip
                )
    if not clips:
        raise HGMambaError(f"no sequences found in {path_3d} for the requested subjects/actions")
    return clips
