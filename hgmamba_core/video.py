"""Streaming video reader: one frame at a time, so long videos run in bounded memory.

OpenCV (FFmpeg backend) decodes; rotation metadata (phone videos) is honoured: OpenCV rotates
frames itself when its auto-orientation is on, otherwise we rotate by the stored angle. Sizes
are always those of the frames as yielded (after rotation), so pixel coordinates downstream
refer to what a viewer sees.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hgmamba_core.errors import HGMambaError

# Decoding may stop this many frames (or this fraction) short of the container's frame count
# before we call the file truncated: some containers only estimate the count from the duration.
_COUNT_SLACK_FRAMES = 2
_COUNT_SLACK_FRACTION = 0.02
_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds, as yielded by VideoReader (width/height after rotation)."""

    path: str
    fps: float
    width: int
    height: int
    frame_count: int  # as the container reports it; 0 when unknown
    rotation: int  # degrees clockwise from the metadata (0, 90, 180, 270)

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise HGMambaError(f"video not found: {path}")
    if path.is_dir():
        raise HGMambaError(f"expected a video file, got a folder: {path}")
    if path.stat().st_size == 0:
        raise HGMambaError(f"video file is empty (0 bytes): {path}")


def _open(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise HGMambaError(
            f"cannot decode {path}: not a video OpenCV/FFmpeg can read (corrupt, truncated, "
            "or not a video file)"
        )
    return cap


class VideoReader:
    """Iterate over the BGR frames (H, W, 3) uint8 of a video, one at a time.

    `strict=True` raises HGMambaError when decoding stops well before the frame count the
    container promises (a truncated or corrupt file); `strict=False` just stops there and
    `frames_read` tells how far it got. Use as a context manager or call close().
    """

    def __init__(self, path: str | os.PathLike, strict: bool = True) -> None:
        self.path = Path(path)
        self.strict = strict
        self.frames_read = 0
        _check_file(self.path)
        self._cap = _open(self.path)
        cap = self._cap
        auto_ok = bool(cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)) or bool(
            cap.get(cv2.CAP_PROP_ORIENTATION_AUTO)
        )
        rotation = int(round(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0)) % 360
        # OpenCV rotates for us when auto-orientation is on; otherwise we do it.
        self._manual_rotate = None if auto_ok else _ROTATE.get(rotation)
        self._first = self._read_raw()
        if self._first is None:
            self.close()
            raise HGMambaError(f"cannot decode any frame of {self.path}: corrupt or not a video")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not np.isfinite(fps) or fps <= 0 or fps > 1000:
            fps = 0.0
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        count = int(count) if np.isfinite(count) and count > 0 else 0
        h, w = self._first.shape[:2]
        self.info = VideoInfo(str(self.path), fps, int(w), int(h), count, rotation)

    def _read_raw(self) -> np.ndarray | None:
        ok, frame = self._cap.read()
        if not ok or frame is None:
            return None
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if self._manual_rotate is not None:
            frame = cv2.rotate(frame, self._manual_rotate)
        return frame

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._cap is None:
            raise HGMambaError(f"video reader for {self.path} is closed")
        frame, self._first = self._first, None
        if frame is None:
            frame = self._read_raw()
        while frame is not None:
            self.frames_read += 1
            yield frame
            frame = self._read_raw()
        self._check_complete()

    def _check_complete(self) -> None:
        expected = self.info.frame_count
        slack = max(_COUNT_SLACK_FRAMES, int(_COUNT_SLACK_FRACTION * expected))
        if self.strict and expected and self.frames_read < expected - slack:
            raise HGMambaError(
                f"{self.path}: decoding stopped at frame {self.frames_read} of {expected} "
                "(file truncated or corrupt); re-encode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4"
            )

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None  # type: ignore[assignment]
        self._first = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """fps, size (after rotation), frame count and rotation of a video, decoding one frame."""
    with VideoReader(path) as r:
        return r.info


def iter_frames(path: str | os.PathLike, strict: bool = True) -> Iterator[np.ndarray]:
    """Yield the frames of a video one at a time (closes the file when done)."""
    with VideoReader(path, strict=strict) as r:
        yield from r
