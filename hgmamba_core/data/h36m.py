"""Human3.6M from our preprocessed files (../shared/data/h36m, see its README).

A data folder holds `h36m_3d_17j.npz` (world 3D, metres, 50 fps, keys "S1/Walking 1"),
`h36m_cameras.json` and `h36m_sh_2d.npz` (Stacked Hourglass 2D, MPII-16, keys
"S1/Walking 1.54138969"). One PoseClip is produced per (sequence, camera):
- 2D "gt": the world 3D projected with the full camera model (distortion included);
- 2D "sh": the detections mapped MPII-16 -> H36M-17 by `skeleton.mpii_to_h36m`
  (pelvis, thorax, upper neck -> neck/nose, head top -> head; spine = pelvis/thorax midpoint);
- 3D: camera frame, metres, X_cam = R (X_world - T). Root joint: 0 (pelvis).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from hgmamba_core.camera import Camera, load_h36m_cameras, project, world_to_camera
from hgmamba_core.data.clips import PoseClip
from hgmamba_core.errors import HGMambaError
from hgmamba_core.skeleton import mpii_to_h36m

TRAIN_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS: tuple[str, ...] = ("S9", "S11")
FILE_3D = "h36m_3d_17j.npz"
FILE_CAMERAS = "h36m_cameras.json"
FILE_SH = "h36m_sh_2d.npz"

_TAKE = re.compile(r"^(.*?)(?: \d+)?$")


def action_of(sequence: str) -> str:
    """'Walking 1' -> 'Walking'; 'Walking' -> 'Walking' (the take number is dropped)."""
    return _TAKE.match(sequence.strip()).group(1)  # type: ignore[union-attr]


def matches_actions(sequence: str, actions: Iterable[str] | None) -> bool:
    """True when the sequence's action is one of `actions` (None or empty: every action).

    "Walking" matches "Walking" and "Walking 1" but not "WalkTogether"; a full take name such
    as "Walking 1" matches only that take.
    """
    if not actions:
        return True
    wanted = {a.strip().lower() for a in actions}
    return sequence.lower() in wanted or action_of(sequence).lower() in wanted


def _require(folder: Path, name: str) -> Path:
    p = folder / name
    if not p.is_file():
        raise HGMambaError(
            f"Human3.6M file missing: {p} (expected {FILE_3D}, {FILE_CAMERAS}, {FILE_SH})"
        )
    return p


def project_sequence(world: np.ndarray, cam: Camera) -> tuple[np.ndarray, np.ndarray]:
    """World 3D (N, 17, 3) -> (GT 2D pixels (N, 17, 2), camera-frame 3D (N, 17, 3)), float32."""
    x_cam = world_to_camera(world.astype(np.float64), cam)
    return project(x_cam, cam).astype(np.float32), x_cam.astype(np.float32)


def load_h36m(
    data_dir: str | os.PathLike,
    subjects: Iterable[str],
    two_d: str = "gt",
    actions: Iterable[str] | None = None,
    cameras: Iterable[str] | None = None,
) -> list[PoseClip]:
    """All (sequence, camera) clips of the given subjects, sorted by subject, sequence, camera.

    With two_d="sh", pairs that have no detections (S11/Directions in camera 54138969) are
    skipped, and so are detections without 3D. `cameras` restricts to camera ids.
    """
    if two_d not in ("gt", "sh"):
        raise HGMambaError(f"unknown 2D source '{two_d}': use gt or sh")
    folder = Path(data_dir)
    if not folder.is_dir():
        raise HGMambaError(f"Human3.6M data folder not found: {folder}")
    subjects = [s.strip() for s in subjects if s.strip()]
    cams_by_subject = load_h36m_cameras(_require(folder, FILE_CAMERAS))
    for s in subjects:
        if s not in cams_by_subject:
            raise HGMambaError(
                f"unknown subject '{s}': cameras exist for {sorted(cams_by_subject)}"
            )
    cam_filter = {c.strip() for c in cameras} if cameras else None
    actions = list(actions) if actions else None
    path3d = _require(folder, FILE_3D)
    sh = np.load(_require(folder, FILE_SH), allow_pickle=False) if two_d == "sh" else None
    clips: list[PoseClip] = []
    try:
        with np.load(path3d, allow_pickle=False) as z3:
            keys = sorted(z3.files)
            for subject in subjects:
                for key in keys:
                    s, _, seq = key.partition("/")
                    if s != subject or not matches_actions(seq, actions):
                        continue
                    world = z3[key]
                    for cam in cams_by_subject[subject]:
                        if cam_filter is not None and cam.id not in cam_filter:
                            continue
                        kp, x_cam = project_sequence(world, cam)
                        if sh is not None:
                            sh_key = f"{key}.{cam.id}"
                            if sh_key not in sh.files:
                                continue
                            det = sh[sh_key]
                            if det.shape[0] != world.shape[0]:
                                raise HGMambaError(
                                    f"{sh_key}: {det.shape[0]} SH frames but {world.shape[0]} 3D frames"
                                )
                            kp = mpii_to_h36m(det)
                        clips.append(
                            PoseClip(
                                name=f"{key}.{cam.id}",
                                subject=subject,
                                action=action_of(seq),
                                keypoints=kp,
                                joints3d=x_cam,
                                size=cam.res,
                            )  # fmt: skip
                        )
    except (OSError, ValueError) as e:
        raise HGMambaError(f"cannot read Human3.6M files in {folder}: {e}") from None
    finally:
        if sh is not None:
            sh.close()
    if not clips:
        raise HGMambaError(
            f"no Human3.6M sequences for subjects {','.join(subjects)}"
            + (f" and actions {','.join(actions)}" if actions else "")
        )
    return clips
