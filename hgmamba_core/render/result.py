"""Re-render saved results (a `hgmamba lift` folder or `hgmamba eval` predictions) without
re-running detection or the lifter: the logic behind `hgmamba render`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from hgmamba_core.errors import HGMambaError
from hgmamba_core.export import read_pose3d
from hgmamba_core.poses import Pose2DSequence, Pose3DSequence
from hgmamba_core.render import (
    DEFAULT_VIEW,
    eval_to_display,
    render_figure_png,
    render_video,
)
from hgmamba_core.skeleton import NUM_JOINTS


def load_eval_predictions(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """`pred`, `gt` (frames, 17, 3) mm root-relative from `hgmamba eval --save-predictions`."""
    p = Path(path)
    if not p.is_file():
        raise HGMambaError(f"--gt file not found: {p}")
    try:
        with np.load(p, allow_pickle=False) as z:
            pred, gt = np.asarray(z["pred"], np.float64), np.asarray(z["gt"], np.float64)
    except KeyError:
        raise HGMambaError(
            f"{p} needs arrays 'pred' and 'gt' (hgmamba eval --save-predictions)"
        ) from None
    except (OSError, ValueError) as e:
        raise HGMambaError(f"cannot read {p}: {e}") from None
    for name, a in (("pred", pred), ("gt", gt)):
        if a.ndim != 3 or a.shape[1:] != (NUM_JOINTS, 3) or len(a) == 0:
            raise HGMambaError(f"{p}: '{name}' must be (frames, 17, 3), got {a.shape}")
    if pred.shape != gt.shape:
        raise HGMambaError(f"{p}: pred {pred.shape} and gt {gt.shape} differ in shape")
    return pred, gt


def _load_lift_dir(d: Path) -> tuple[Pose2DSequence, Pose3DSequence]:
    missing = [n for n in ("pose2d.npz", "pose3d.npy") if not (d / n).is_file()]
    if missing:
        raise HGMambaError(
            f"{d} lacks {' and '.join(missing)}: expected the output folder of 'hgmamba lift'"
        )
    pose2d = Pose2DSequence.load(d / "pose2d.npz")
    pose3d = read_pose3d(d)
    if pose2d.keypoints.shape[:2] != pose3d.joints.shape[:2]:
        raise HGMambaError(
            f"{d}: pose2d.npz has (frames, persons) {pose2d.keypoints.shape[:2]} but "
            f"pose3d.npy has {pose3d.joints.shape[:2]}"
        )
    return pose2d, pose3d


def _recorded_rotate(d: Path) -> int:
    """The --rotate that `hgmamba lift` applied (pose3d.json's rotate_deg; 0 without it)."""
    from hgmamba_core.video import ROTATIONS  # noqa: PLC0415

    try:
        with open(d / "pose3d.json", encoding="utf-8") as fh:
            rot = json.load(fh).get("metadata", {}).get("rotate_deg", 0)
    except (OSError, ValueError, AttributeError):
        return 0
    return rot if rot in ROTATIONS else 0


def render_result(
    result_dir: str | os.PathLike,
    *,
    video: str | os.PathLike | None = None,
    view: tuple[float, float] = DEFAULT_VIEW,
    frames: slice | None = None,
    fps: float | None = None,
    png: bool = False,
    gt_file: str | os.PathLike | None = None,
    progress: bool = True,
    trail_s: float = 0.0,
    backend: str = "opencv",
) -> Path:
    """Write RESULT_DIR/<dir name>_3d.mp4 (or _figure.png); with gt_file, <dir name>_gt_3d.mp4
    (or _gt_figure.png) showing the eval predictions and ground truth in one 3D plot."""
    d = Path(result_dir)
    if not d.is_dir():
        raise HGMambaError(f"result folder not found: {d}")
    if fps is not None and (not np.isfinite(fps) or fps <= 0):
        raise HGMambaError(f"--fps must be a positive number, got {fps}")
    stem = d.resolve().name or "result"
    if video is not None and not Path(video).is_file():
        raise HGMambaError(f"video not found: {video}")

    gt = None
    if gt_file is not None:
        pred_mm, gt_mm = load_eval_predictions(gt_file)
        gt, pred = eval_to_display(gt_mm, pred_mm)
        pose2d = None
        if (d / "pose2d.npz").is_file():
            pose2d = Pose2DSequence.load(d / "pose2d.npz")
            # Another clip's 2D (other frame count) is not shown: the 3D plot only.
            pose2d = pose2d.select([0]) if pose2d.num_frames == len(pred) else None
        pose3d = Pose3DSequence(pred[:, None], np.array([0]), fps or 50.0)
        name = f"{stem}_gt"
    else:
        pose2d, pose3d = _load_lift_dir(d)
        name = stem

    frames_iter = None
    if video is not None:
        from hgmamba_core.video import iter_frames  # noqa: PLC0415

        frames_iter = iter_frames(video, rotate=_recorded_rotate(d))
    try:
        if png:
            return render_figure_png(frames_iter, pose2d, pose3d, d / f"{name}_figure.png",
                                     frames=frames, view=view, gt=gt)  # fmt: skip
        return render_video(frames_iter, pose2d, pose3d, d / f"{name}_3d.mp4", view=view,
                            fps=fps, frames=frames, progress=progress, gt=gt,
                            trail_s=trail_s, backend=backend)  # fmt: skip
    finally:
        close = getattr(frames_iter, "close", None)
        if close is not None:
            close()
