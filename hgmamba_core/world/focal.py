"""The focal length in pixels: --focal, else the video's 35 mm-equivalent tag, else max(w, h).

Phones (e.g. Apple's `com.apple.quicktime.camera.focal_length.35mmEquivalent`) and cameras
(EXIF `FocalLengthIn35mmFilm`) tag it; 35 mm-equivalent focal lengths refer to the 43.27 mm
diagonal of a full-frame sensor, so f_px = f35 / 43.27 * the image diagonal in pixels.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Focal:
    """A focal length in pixels and where it came from (for the metadata and the summary)."""

    px: float
    source: str


def default_focal(size: tuple[int, int]) -> Focal:
    return Focal(float(max(size)), "default max(w, h)")


def focal_from_tags(tags: Mapping[str, str], size: tuple[int, int]) -> Focal | None:
    """A 35 mm-equivalent focal length tag -> pixels; None without a usable tag."""
    for key, value in tags.items():
        k = key.lower().replace("_", "").replace(" ", "").replace(".", "")
        if "focal" not in k or "35" not in k:
            continue
        m = _NUMBER.search(str(value))
        if m is None:
            continue
        f35 = float(m.group())
        if not 5.0 <= f35 <= 2000.0:
            continue
        px = f35 / FULL_FRAME_DIAGONAL_MM * math.hypot(*size)
        return Focal(px, f"video metadata: {key} = {f35:g} mm (35 mm equivalent)")
    return None


def video_tags(path: Path) -> dict[str, str]:
    """The container's and video streams' metadata tags (empty when PyAV cannot open it)."""
    try:
        import av
    except ImportError:
        return {}
    tags: dict[str, str] = {}
    try:
        with av.open(str(path)) as c:
            tags.update({str(k): str(v) for k, v in (c.metadata or {}).items()})
            for s in c.streams.video:
                tags.update({str(k): str(v) for k, v in (s.metadata or {}).items()})
    except (OSError, ValueError, av.error.FFmpegError):  # type: ignore[attr-defined]
        return {}
    return tags


def resolve_focal(
    size: tuple[int, int], given_px: float | None = None, video: Path | None = None
) -> Focal:
    """--focal wins, then the video's tag, then max(w, h)."""
    if given_px is not None:
        return Focal(float(given_px), "--focal")
    if video is not None:
        f = focal_from_tags(video_tags(video), size)
        if f is not None:
            return f
    return default_focal(size)
