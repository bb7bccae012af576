"""Ultralytics YOLO-Pose as a Pose2DDetector, offline by default, with ByteTrack identities.

Weights resolve in this order: an explicit path; the copy shipped in assets/weights (found via
$HGMAMBA_ASSETS, then beside the package); Ultralytics' own name-based download only for a
bare model name that is not on disk, and only when the user has not set YOLO_OFFLINE.

backend="onnx" (optional extra `pip install hgmamba[onnx]`) exports the .pt weights to ONNX once
per (weights content, imgsz), caches the file under $HGMAMBA_CACHE or ~/.cache/hgmamba/onnx,
and runs it with ONNX Runtime on the CPU; the export runs locally, without network.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from detectors.base import FrameDetections
from hgmamba_core.assets import ASSETS_ENV, assets_dirs
from hgmamba_core.device import resolve_device
from hgmamba_core.errors import HGMambaError

DEFAULT_WEIGHTS = "yolo11n-pose.pt"
TRACKER_CFG = "bytetrack.yaml"
BACKENDS = ("torch", "onnx")
CACHE_ENV = "HGMAMBA_CACHE"
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
    """Import Ultralytics' YOLO class with network look-ups off (import-time checks included)."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    return YOLO


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hide Ultralytics' info chatter (model loading, export banners); warnings still show."""
    from ultralytics.utils import LOGGER

    old = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        yield
    finally:
        LOGGER.setLevel(old)


def onnx_cache_dir() -> Path:
    """Where exported ONNX detectors are kept: $HGMAMBA_CACHE/onnx or ~/.cache/hgmamba/onnx."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser() / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hgmamba" / "onnx"


def export_onnx(weights: str, imgsz: int, cache_dir: Path | None = None) -> Path:
    """The ONNX export of a local .pt for one imgsz, made once and reused (keyed by content).

    The export happens in a scratch folder (the weights' own folder may be read-only) and the
    result is moved into the cache atomically, so an interrupted export leaves nothing behind.
    """
    for mod in ("onnx", "onnxruntime", "onnxslim"):
        try:
            __import__(mod)
        except ImportError:
            raise HGMambaError(
                f"--detector-backend onnx needs the '{mod}' package: pip install 'hgmamba[onnx]'"
            ) from None
    src = Path(weights)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
    folder = cache_dir or onnx_cache_dir()
    target = folder / f"{src.stem}-{digest}-{imgsz}.onnx"
    if target.is_file() and target.stat().st_size > 0:
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".export-", dir=folder))
    except OSError as e:
        raise HGMambaError(f"cannot write the ONNX cache in {folder}: {e.strerror or e}") from None
    try:
        pt = scratch / src.name
        shutil.copyfile(src, pt)
        yolo_cls = import_yolo()
        try:
            with _quiet():
                out = yolo_cls(str(pt), task="pose").export(
                    format="onnx", imgsz=imgsz, simplify=True, dynamic=False, device="cpu",
                    verbose=False,
                )  # fmt: skip
        except Exception as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise HGMambaError(f"ONNX export of {src} failed: {first}") from None
        os.replace(out, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


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
    ) -> None:
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
        self.tracker = tracker
        if backend not in BACKENDS:
            raise HGMambaError(f"--detector-backend must be one of {', '.join(BACKENDS)}")
        self.backend = backend
        if backend == "onnx":
            if self.device != "cpu":
                raise HGMambaError("--detector-backend onnx runs on the CPU: use --device cpu")
            if download or not self.weights.endswith(".pt"):
                raise HGMambaError("--detector-backend onnx needs local .pt detector weights")
            self.weights = str(export_onnx(self.weights, self.imgsz))
        yolo_cls = import_yolo()
        try:
            with _quiet():
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

    def _kwargs(self) -> dict[str, Any]:
        return dict(
            imgsz=self.imgsz, conf=self.conf, device=self.device, verbose=False, classes=[0]
        )

    def detect(self, frame: np.ndarray) -> FrameDetections:
        """People in one image; track_ids are -1."""
        with _quiet():
            res = self.model.predict(frame, **self._kwargs())[0]
        return _to_detections(res, tracked=False)

    def track(self, frame: np.ndarray) -> FrameDetections:
        """People in the next frame of a video, with ByteTrack ids kept across calls."""
        with _quiet():
            res = self.model.track(frame, persist=True, tracker=self.tracker, **self._kwargs())[0]
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
