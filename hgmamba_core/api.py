"""The Python API: `HGMamba` lifts a video, a keypoint file or an array; `LiftResult` holds it.

    from hgmamba_core import HGMamba
    model = HGMamba("xs")                      # or a checkpoint path; device="auto"|"cpu"|"cuda"
    res = model.lift("clip.mp4")               # or model.lift(kp, size=(w, h), fps=25)
    res.poses3d.shape                          # (frames, persons, 17, 3) metres, world frame
    res.save("results/clip")                   # the files `hgmamba lift` writes

It runs the same stages as `hgmamba lift` (hgmamba_core.pipeline): the 2D front end (detector
and tracker, or a keypoint file with its cleaning and person selection), the windowed lifter
and the world-frame conversion, so a result is the same whichever way it was made.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hgmamba_core.errors import HGMambaError
from hgmamba_core.poses import Pose2DSequence, Pose3DSequence
from hgmamba_core.world import WorldConfig

SAVE_FORMATS = ("npy", "json", "csv", "bvh", "html", "mp4")  # mp4: the side-by-side render
_KEYPOINT_SUFFIXES = {".npz", ".npy", ".json"}


def camera_from_meta(meta: dict) -> Any | None:
    """The pipeline's camera estimate: its typed object when the world package has one, else
    the metadata dict as written to pose3d.json, else None (no estimate in this result)."""
    cam = meta.get("camera")
    if not isinstance(cam, dict):
        return None
    try:
        from hgmamba_core.world.estimate import CameraEstimate  # type: ignore[import-not-found]
    except ImportError:
        return cam
    return CameraEstimate.from_dict(cam)


@dataclass
class LiftResult:
    """One lifted clip: the 2D that was lifted and the 3D in the world frame (README axes)."""

    pose2d: Pose2DSequence
    pose3d: Pose3DSequence
    video: Path | None = None  # the input video, for `render` and `save(..., "mp4")`
    notes: list[str] = field(default_factory=list)

    @property
    def poses3d(self) -> np.ndarray:
        """(frames, persons, 17, 3) float32 metres, x right, y forward, z up; NaN if absent."""
        return self.pose3d.joints

    @property
    def poses2d(self) -> np.ndarray:
        """(frames, persons, 17, 2) pixels, H36M-17 order; NaN where missing."""
        return self.pose2d.keypoints

    @property
    def scores(self) -> np.ndarray:
        return self.pose2d.scores

    @property
    def track_ids(self) -> np.ndarray:
        return self.pose2d.track_ids

    @property
    def fps(self) -> float:
        return float(self.pose2d.fps)

    @property
    def size(self) -> tuple[int, int]:
        return self.pose2d.size

    @property
    def camera(self) -> Any | None:
        return camera_from_meta(self.pose3d.meta or {})

    def __repr__(self) -> str:
        f, p = self.poses3d.shape[:2]
        return (
            f"LiftResult({f} frames, {p} persons, fps={self.fps:g}, "
            f"track_ids={self.track_ids.tolist()}, variant={self.pose3d.variant!r})"
        )

    def to_json(self) -> str:
        """The text of pose3d.json (a JSON string, as Ultralytics' `Results.to_json`)."""
        from hgmamba_core.export import write_json

        with tempfile.TemporaryDirectory(prefix="hgmamba-json-") as tmp:
            return write_json(self.pose3d, Path(tmp) / "pose3d.json").read_text(encoding="utf-8")

    def to_dict(self) -> dict:
        """pose3d.json as a dict: metadata and per frame, per person, named joints."""
        return json.loads(self.to_json())

    def save(self, out_dir: str | os.PathLike, formats: Sequence[str] = SAVE_FORMATS) -> list[Path]:
        """Write pose2d.npz and pose3d.<fmt> (and <stem>_3d.mp4 for "mp4") into out_dir, as
        `hgmamba lift` does: all at once or, on an error, nothing."""
        from hgmamba_core import export as export_mod
        from hgmamba_core.pipeline import _prepare_out_dir, _publish, _staging, parse_exports

        wanted = [f.strip().lower() for f in formats]
        exports = parse_exports([f for f in wanted if f != "mp4"] or ["npy"])
        out = Path(out_dir)
        with _staging(out, _prepare_out_dir(out)) as stage:
            self.pose2d.save(stage / "pose2d.npz")
            export_mod.export_all(self.pose3d, stage, exports)
            if "mp4" in wanted:
                self.render(stage / f"{self._stem()}_3d.mp4")
            return _publish(stage, out)

    def render(self, path: str | os.PathLike, video: str | os.PathLike | None = None) -> Path:
        """The side-by-side mp4: the input video (or a blank panel) with the 2D, beside the 3D."""
        from hgmamba_core.pipeline import LiftOptions, _render

        src = Path(video) if video is not None else self.video
        turn = int((self.pose3d.input_info or {}).get("rotate_deg") or 0)  # as the lift turned it
        _render(
            src, self.pose2d, self.pose3d, Path(path), {}, LiftOptions(progress=False, rotate=turn)
        )
        return Path(path)

    def _stem(self) -> str:
        source = self.video or Path(str((self.pose3d.meta or {}).get("source") or "result"))
        return Path(source).stem or "result"


class HGMamba:
    """A trained HGMamba lifter with the whole video -> 3D pipeline around it.

    `variant_or_checkpoint` is a variant name ("xs", "s", "b": the shipped or default weights,
    see `hgmamba info`) or a checkpoint path written by `hgmamba train`.
    """

    def __init__(
        self,
        variant_or_checkpoint: str | os.PathLike = "xs",
        device: str = "auto",
        *,
        batch_size: int = 64,
        flip: bool = True,
    ) -> None:
        from hgmamba_core.pipeline import LiftOptions, checkpoint_notes, load_lifter

        variant, checkpoint = _variant_or_checkpoint(variant_or_checkpoint)
        opts = LiftOptions(
            variant=variant, checkpoint=checkpoint, device=device, batch_size=batch_size,
            flip=flip,
        )  # fmt: skip
        self.lifter = load_lifter(opts)
        self.device_arg = device
        self.notes = checkpoint_notes(getattr(self.lifter.model, "meta", None))

    @property
    def variant(self) -> str:
        return self.lifter.variant

    @property
    def checkpoint(self) -> str:
        return self.lifter.checkpoint

    @property
    def device(self) -> str:
        return str(self.lifter.device)

    @property
    def frames(self) -> int:
        """T, the lifter's window length."""
        return int(self.lifter.T)

    def __repr__(self) -> str:
        return f"HGMamba({self.variant!r}, device={self.device!r}, checkpoint={self.checkpoint!r})"

    def lift(
        self,
        source: str | os.PathLike | np.ndarray | Pose2DSequence,
        *,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
        layout: str | None = None,
        person: str | int = "main",
        smooth: bool = False,
        max_gap: int | None = None,
        world: WorldConfig | None = None,
        detector_weights: str | os.PathLike | None = None,
        detector_imgsz: int | None = None,
        conf: float = 0.25,
        progress: bool = False,
        detector_mode: str | None = None,
        rotate: int = 0,
    ) -> LiftResult:
        """Lift a video file, a keypoint file, an array or a Pose2DSequence to 3D.

        An array is (frames[, persons], 17, 2|3) pixels (the third channel a confidence) in
        COCO-17 or H36M-17 order (`layout`, else detected); give `size` (w, h) and `fps`,
        which set the normalization and gap lengths. `person`: main|largest|longest|all|ID.
        detector_mode: full|track (default track: tracking by crop, detectors/roi.py).
        rotate: degrees clockwise (0, 90, 180, 270) to turn a video's frames first.
        """
        from hgmamba_core.pipeline import LiftOptions, lift_in_world, lift_source

        world = world or WorldConfig()
        notes = list(self.notes)
        if isinstance(source, Pose2DSequence):
            pose3d = lift_in_world(self.lifter, source, world, notes=notes)
            return LiftResult(pose2d=source, pose3d=pose3d, notes=notes)
        path, tmp = _as_path(source, size=size, fps=fps, layout=layout)
        is_keypoints = path.suffix.lower() in _KEYPOINT_SUFFIXES
        video = None if is_keypoints else path  # a video, an image or a folder of images
        opts = LiftOptions(
            video=video, keypoints=path if is_keypoints else None, layout=layout,
            person=str(person), device=self.device_arg, smooth=smooth, max_gap=max_gap,
            detector_weights=Path(detector_weights) if detector_weights else None,
            detector_imgsz=detector_imgsz, conf=conf, fps=fps, progress=progress, world=world,
            detector_mode=detector_mode, rotate=rotate,
        )  # fmt: skip
        try:
            if not path.exists():
                raise HGMambaError(f"input not found: {path}")
            if is_keypoints and size is not None and not isinstance(source, np.ndarray):
                raise HGMambaError("size= applies to arrays; a keypoint file states its own")
            pose2d, pose3d = lift_source(self.lifter, opts, video, opts.keypoints, {}, notes)
        finally:
            if tmp is not None:
                tmp.cleanup()
        if isinstance(source, np.ndarray):
            pose3d.meta["source"] = "array"
        return LiftResult(pose2d=pose2d, pose3d=pose3d, video=video, notes=notes)

    __call__ = lift


def _variant_or_checkpoint(model: str | os.PathLike) -> tuple[str | None, Path | None]:
    """("xs", None) for a variant name, (None, path) for a checkpoint file."""
    from hgmamba_core.model.variants import VARIANTS

    name = str(model)
    if not isinstance(model, Path) and name.lower() in VARIANTS:
        return name.lower(), None
    path = Path(model)
    if path.suffix or path.exists() or os.sep in name:
        return None, path
    raise HGMambaError(
        f"unknown model '{name}': use a variant ({', '.join(sorted(VARIANTS))}) or a checkpoint"
    )


def _as_path(
    source: str | os.PathLike | np.ndarray,
    *,
    size: tuple[int, int] | None,
    fps: float | None,
    layout: str | None,
) -> tuple[Path, tempfile.TemporaryDirectory | None]:
    """A file to read: the given path, or the array written as a keypoint npz, so arrays go
    through exactly the keypoint-file front end (layout detection, cleaning, selection)."""
    if not isinstance(source, np.ndarray):
        return Path(source), None
    arr = np.asarray(source, dtype=np.float32)
    if arr.ndim not in (3, 4) or arr.shape[-2] != 17 or arr.shape[-1] not in (2, 3):
        raise HGMambaError(
            f"keypoints must be (frames[, persons], 17, 2|3) pixels, got {tuple(arr.shape)}"
        )
    if size is None or fps is None:
        raise HGMambaError("lifting an array needs size=(width, height) and fps")
    tmp = tempfile.TemporaryDirectory(prefix="hgmamba-kp-")
    path = Path(tmp.name) / "keypoints.npz"
    extra = {"layout": layout} if layout else {}
    np.savez(path, keypoints=arr, fps=np.float64(fps), size=np.asarray(size, np.int64), **extra)
    return path, tmp
