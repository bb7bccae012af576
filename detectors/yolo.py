"""Ultralytics YOLO-Pose as a Pose2DDetector, offline by default, with ByteTrack identities.

Weights resolve in this order: an explicit path; the copy shipped in assets/weights (found via
$HGMAMBA_ASSETS, then beside the package); Ultralytics' own name-based download only for a
bare model name that is not on disk, and only when the user has not set YOLO_OFFLINE.

backend="openvino" (installed with hgmamba) / "onnx" (optional extra `pip install hgmamba[onnx]`)
runs a CPU export of the .pt weights made once per (weights content, imgsz) and cached (see
detectors/backends.py); "auto" picks the fastest one installed on a CPU, torch on a GPU, and
falls back to torch with a note when an export fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from detectors.backends import Size, choose_backend, export_weights, fitted_input
from detectors.base import FrameDetections
from hgmamba_core.assets import ASSETS_ENV, assets_dirs
from hgmamba_core.device import resolve_device
from hgmamba_core.errors import HGMambaError

DEFAULT_WEIGHTS = "yolo11n-pose.pt"
TRACKER_CFG = "bytetrack.yaml"
# ByteTrack's point (Zhang et al., ECCV 2022): boxes below the start threshold still extend a
# track already running (its second association), so a person who turns, is half hidden or
# small keeps their track. The detector must hand those low boxes over: while tracking it runs
# at TRACK_LOW_CONF, and `conf` only decides who may start (or first-match) a track.
TRACK_LOW_CONF = 0.1
_USER_YOLO_OFFLINE = os.environ.get("YOLO_OFFLINE")  # captured before we set our default


def _shipped_weights(name: str) -> Path | None:
    for d in assets_dirs():
        p = d / "weights" / name
        if p.is_file():
            return p.resolve()
    return None


def resolve_weights(weights: str | os.PathLike | None = None) -> tuple[str, bool]:
    """Return (weights to load, needs_download). Local files come back as absolute paths.

    A bare name (no folder part) not found on disk nor among the shipped weights is returned
    as is with needs_download=True: Ultralytics will fetch it if the machine is online.
    """
    if weights is None:
        p = _shipped_weights(DEFAULT_WEIGHTS)
        if p is None:
            where = ", ".join(str(d / "weights") for d in assets_dirs())
            raise HGMambaError(
                f"shipped detector weights {DEFAULT_WEIGHTS} not found (looked in {where}): "
                f"pass --detector-weights PATH or set {ASSETS_ENV} to the assets folder"
            )
        return str(p), False
    p = Path(weights).expanduser()
    if p.is_file():
        if p.stat().st_size == 0:
            raise HGMambaError(f"detector weights file is empty: {p}")
        return str(p.resolve()), False
    if p.is_dir():
        raise HGMambaError(f"--detector-weights must be a file, got a folder: {p}")
    bare = p.name == str(weights) and p.suffix in (".pt", ".onnx", "")
    if not bare:
        raise HGMambaError(f"detector weights not found: {p}")
    shipped = _shipped_weights(p.name)
    if shipped is not None:
        return str(shipped), False
    return str(weights), True


@contextlib.contextmanager
def _network_allowed() -> Iterator[None]:
    """Lift our own YOLO_OFFLINE default while Ultralytics downloads a bare model name.

    A YOLO_OFFLINE the user (or a test harness) set before this module was imported stays.
    """
    if _USER_YOLO_OFFLINE is not None or os.environ.get("YOLO_OFFLINE") != "1":
        yield
        return
    del os.environ["YOLO_OFFLINE"]
    try:
        yield
    finally:
        os.environ["YOLO_OFFLINE"] = "1"


def import_yolo() -> Any:
    """Import Ultralytics' YOLO class with network look-ups off (import-time checks included)
    and without its first-run banner: the first import writes Ultralytics' settings file and
    announces it in four lines of `yolo settings` help, noise in a newcomer's first `hgmamba
    lift`. So the first import runs with YOLO_VERBOSE=False; its logger then gets the INFO level
    back unless the user had set YOLO_VERBOSE themselves."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    if "ultralytics" not in sys.modules:
        user = os.environ.get("YOLO_VERBOSE")
        os.environ["YOLO_VERBOSE"] = "False"
        try:
            import ultralytics  # noqa: F401
        finally:
            if user is None:
                os.environ.pop("YOLO_VERBOSE", None)
            else:
                os.environ["YOLO_VERBOSE"] = user
        if user is None:
            from ultralytics.utils import LOGGER

            LOGGER.setLevel(logging.INFO)
            for handler in LOGGER.handlers:
                handler.setLevel(logging.INFO)
    from ultralytics import YOLO

    return YOLO


@contextlib.contextmanager
def quiet_ultralytics() -> Iterator[None]:
    """Hide Ultralytics' info chatter (model loading, export banners); warnings still show."""
    from ultralytics.utils import LOGGER

    old = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        yield
    finally:
        LOGGER.setLevel(old)


def _ultra_device(name: str) -> str:
    dev = resolve_device(name)
    if dev.type == "cuda":
        return str(dev.index if dev.index is not None else 0)
    return dev.type


class YoloPoseDetector:
    """yolo11n-pose (or any Ultralytics pose model) on single frames, streaming-friendly."""

    name = "yolo-pose"

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        imgsz: int = 640,
        device: str = "auto",
        conf: float = 0.25,
        tracker: str = TRACKER_CFG,
        backend: str = "torch",
        frame_size: tuple[int, int] | None = None,
    ) -> None:
        """frame_size (w, h) of the video, when known, shapes a fixed-size export to it."""
        if imgsz < 32 or imgsz % 32:
            raise HGMambaError(f"--detector-imgsz must be a positive multiple of 32, got {imgsz}")
        if not 0.0 < conf < 1.0:
            raise HGMambaError(f"--conf must be between 0 and 1, got {conf}")
        self.weights, download = resolve_weights(weights)
        if download and str(_USER_YOLO_OFFLINE).strip().lower() in ("1", "true", "yes", "on"):
            raise HGMambaError(
                f"detector weights '{self.weights}' are not on disk and YOLO_OFFLINE is set, "
                "so they cannot be downloaded: pass --detector-weights PATH"
            )
        self.imgsz = int(imgsz)
        self.conf = float(conf)
        self.device = _ultra_device(device)
        self._tracker_dir: tempfile.TemporaryDirectory | None = None
        self.tracker = self._tracker_config(tracker)
        self.notes: list[str] = []  # one-line remarks for the run's summary (a fallback)
        self.input_size: Size = self.imgsz  # what predict is given; torch letterboxes itself
        self.backend = self._pick_backend(backend, download, fitted_input(self.imgsz, frame_size))
        yolo_cls = import_yolo()
        try:
            with quiet_ultralytics():
                if download:
                    with _network_allowed():
                        self.model = yolo_cls(self.weights, task="pose")
                else:
                    self.model = yolo_cls(self.weights, task="pose")
        except HGMambaError:
            raise
        except Exception as e:  # Ultralytics raises many types for bad/missing weights
            hint = " (bare names download only when online)" if download else ""
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise HGMambaError(
                f"cannot load detector weights {self.weights}{hint}: {msg}"
            ) from None
        if getattr(self.model, "task", "pose") != "pose":
            raise HGMambaError(
                f"{self.weights} is a '{self.model.task}' model, not a pose model (need *-pose.pt)"
            )

    def _pick_backend(self, requested: str, download: bool, size: Size) -> str:
        """The backend that will run, exporting (or reusing) the weights for it; torch with a
        note when the export fails, since torch runs the same weights, only slower."""
        exportable = not download and self.weights.endswith(".pt")
        backend = choose_backend(requested, self.device)
        if backend == "torch":
            return backend
        if not exportable:
            if requested == "auto":
                return "torch"
            raise HGMambaError(f"--detector-backend {backend} needs local .pt detector weights")
        try:
            self.weights = str(export_weights(self.weights, size, backend))
        except HGMambaError as e:
            self.notes.append(f"{e}; running the detector with torch instead")
            return "torch"
        self.input_size = size
        return backend

    @property
    def track_low_conf(self) -> float:
        """The lowest box score handed to the tracker (never above --conf)."""
        return min(self.conf, TRACK_LOW_CONF)

    def _tracker_config(self, tracker: str) -> str:
        """Our ByteTrack settings as a file Ultralytics can read: `conf` starts and first-
        matches tracks, boxes down to track_low_conf only extend them (see TRACK_LOW_CONF)."""
        if tracker != TRACKER_CFG:
            return tracker  # a user's own tracker file is used as it is
        self._tracker_dir = tempfile.TemporaryDirectory(prefix="hgmamba-tracker-")
        path = Path(self._tracker_dir.name) / "bytetrack.yaml"
        settings = {
            "tracker_type": "bytetrack",
            "track_high_thresh": self.conf,
            "track_low_thresh": self.track_low_conf,
            "new_track_thresh": self.conf,
            "track_buffer": 30,
            "match_thresh": 0.8,
            "fuse_score": True,
        }
        path.write_text("".join(f"{k}: {v}\n" for k, v in settings.items()))
        return str(path)

    def _kwargs(self, conf: float | None = None) -> dict[str, Any]:
        return dict(
            imgsz=list(self.input_size) if isinstance(self.input_size, tuple) else self.input_size,
            conf=self.conf if conf is None else conf,
            device=self.device,
            verbose=False,
            classes=[0],
        )

    def detect(self, frame: np.ndarray, conf: float | None = None) -> FrameDetections:
        """People in one image (boxes scored >= conf, default --conf); track_ids are -1."""
        with quiet_ultralytics():
            res = self.model.predict(frame, **self._kwargs(conf))[0]
        return _to_detections(res, tracked=False)

    def track(self, frame: np.ndarray) -> FrameDetections:
        """People in the next frame of a video, with ByteTrack ids kept across calls."""
        with quiet_ultralytics():
            kwargs = self._kwargs(self.track_low_conf)
            res = self.model.track(frame, persist=True, tracker=self.tracker, **kwargs)[0]
        return _to_detections(res, tracked=True)

    def reset(self) -> None:
        """Forget tracker state (ids restart) before a new video."""
        predictor = getattr(self.model, "predictor", None)
        for t in getattr(predictor, "trackers", None) or []:
            t.reset()


def _to_detections(res: Any, tracked: bool) -> FrameDetections:
    kp = res.keypoints
    boxes = res.boxes
    if kp is None or boxes is None or len(boxes) == 0 or kp.data.shape[1] == 0:
        return FrameDetections.empty()
    data = kp.data.detach().cpu().numpy().astype(np.float32)  # (N, 17, 3): x, y, conf
    n = data.shape[0]
    if data.shape[1:] != (17, 3):
        raise HGMambaError(f"detector returned keypoints of shape {data.shape[1:]}, need COCO-17")
    ids = boxes.id if tracked else None
    track_ids = (
        ids.detach().cpu().numpy().astype(np.int64) if ids is not None else np.full(n, -1, np.int64)
    )
    return FrameDetections(
        keypoints=data[..., :2],
        scores=data[..., 2],
        boxes=boxes.xyxy.detach().cpu().numpy(),
        box_scores=boxes.conf.detach().cpu().numpy(),
        track_ids=track_ids,
    )
