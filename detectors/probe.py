"""The detector's input size from the people's size: a look at a few frames before the run.

YOLO11n-pose scores a person above 0.25 only when they are roughly 120 px tall at its input
(the demo clip's ~80 px people in 768x576 frames: 0.75 found per frame at 640 even at conf 0.05,
4.75 at 1280). A fixed 640 loses the small people of wide or surveillance shots; a fixed 1280
costs about 3x on every phone video. So `lift` looks first: the 640 detector runs on 2x2
overlapping tiles of a few early frames (each tile has the frame's aspect, so the same export
serves and a tile is seen at about 1.6x the scale of the whole frame), the people's heights are
measured, and the smallest size at which they are tall enough is chosen.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from detectors.base import Pose2DDetector, box_areas

PROBE_SIZES = (640, 960, 1280)
MIN_PERSON_PX = 120  # person height at the detector's input that YOLO11n-pose scores reliably
PROBE_SECONDS = (0.5, 3.0)  # early frames: no decode of a long video to reach them
TILE_GRID = 2
TILE_OVERLAP = 0.25  # a person cut by one tile's edge is whole in its neighbour


@dataclass(frozen=True)
class SizeProbe:
    """What the look found: the chosen size and the heights (frame pixels) it was based on."""

    imgsz: int
    height_px: float  # the person height the choice used (0 when nobody was found)
    people: int  # people found over all probe frames
    frames: int

    def note(self, default: int) -> str | None:
        """One line for the run's summary when the choice differs from the default."""
        if self.imgsz == default:
            return None
        return (
            f"detector input size {self.imgsz}: people are ~{self.height_px:.0f} px tall "
            f"(looked at {self.frames} frames; --detector-imgsz N sets it)"
        )


def tiles(width: int, height: int, grid: int = TILE_GRID, overlap: float = TILE_OVERLAP):
    """(x0, y0, x1, y1) of a grid x grid cover of the frame by tiles of the frame's aspect."""
    tw = width / (grid - (grid - 1) * overlap)
    th = height / (grid - (grid - 1) * overlap)
    out = []
    for r in range(grid):
        for c in range(grid):
            x0 = round(c * tw * (1 - overlap))
            y0 = round(r * th * (1 - overlap))
            out.append((x0, y0, min(width, round(x0 + tw)), min(height, round(y0 + th))))
    return out


def merge_boxes(boxes: np.ndarray, iou: float = 0.5, inside: float = 0.7) -> np.ndarray:
    """Indices of the boxes left when the finds of one person by two tiles merge: largest first,
    a box overlapping a kept one (IoU > iou) or mostly inside it (a person cut by a tile edge)
    is dropped, so a cut person never stands for their height."""
    areas = box_areas(boxes)
    keep: list[int] = []
    for i in np.argsort(-areas, kind="stable"):
        if keep:
            k = boxes[keep]
            iw = np.clip(
                np.minimum(k[:, 2], boxes[i, 2]) - np.maximum(k[:, 0], boxes[i, 0]), 0, None
            )
            ih = np.clip(
                np.minimum(k[:, 3], boxes[i, 3]) - np.maximum(k[:, 1], boxes[i, 1]), 0, None
            )
            inter = iw * ih
            over = inter / np.maximum(areas[keep] + areas[i] - inter, 1e-6)
            if np.any(over > iou) or np.any(inter > inside * max(float(areas[i]), 1e-6)):
                continue
        keep.append(int(i))
    return np.asarray(keep, dtype=np.int64)


def tiled_boxes(detector: Pose2DDetector, frame: np.ndarray) -> np.ndarray:
    """People boxes (N, 4) in frame pixels from the detector run on each tile."""
    h, w = frame.shape[:2]
    boxes = []
    for x0, y0, x1, y1 in tiles(w, h):
        d = detector.detect(np.ascontiguousarray(frame[y0:y1, x0:x1]))
        if len(d):
            boxes.append(d.boxes + np.array([x0, y0, x0, y0], dtype=np.float32))
    if not boxes:
        return np.zeros((0, 4), dtype=np.float32)
    b = np.concatenate(boxes)
    return b[merge_boxes(b)]


def choose_imgsz(
    heights_per_frame: Sequence[np.ndarray],
    long_side: int,
    main_only: bool,
    sizes: Sequence[int] = PROBE_SIZES,
    min_px: float = MIN_PERSON_PX,
) -> tuple[int, float]:
    """(imgsz, the height it was judged on): the smallest size at which that person height
    reaches min_px at the detector's input. main_only (one person wanted): the tallest person
    of each frame, median over frames; else the median over everyone. Nobody: sizes[0]."""
    hs = [np.asarray(h, dtype=np.float64) for h in heights_per_frame]
    if main_only:
        pool = np.array([h.max() for h in hs if h.size])
    else:
        pool = np.concatenate([h for h in hs if h.size]) if any(h.size for h in hs) else np.zeros(0)
    if pool.size == 0:
        return int(sizes[0]), 0.0
    height = float(np.median(pool))
    for s in sizes:
        if height * s / long_side >= min_px:
            return int(s), height
    return int(sizes[-1]), height


def probe_frames(frames: Iterable[np.ndarray], fps: float, seconds=PROBE_SECONDS) -> list:
    """The frames at `seconds` (or the last frame before the clip ends), reading no further."""
    wanted = sorted({max(0, round(s * (fps or 25.0))) for s in seconds})
    out, last = [], None
    for i, f in enumerate(frames):
        last = f
        if i in wanted:
            out.append(f)
        if i >= wanted[-1]:
            break
    if not out and last is not None:
        out.append(last)
    return out


def probe_imgsz(
    path: str | os.PathLike,
    detector: Pose2DDetector,
    main_only: bool,
    fps: float | None = None,
    rotate: int = 0,
) -> SizeProbe:
    """Look at a few early frames of `path` with `detector` (the default-size one) on tiles.

    When one person is wanted and the whole first probe frame already shows someone tall
    enough at the detector's size (a phone video, say), that one detection decides."""
    from hgmamba_core.video import VideoReader

    with VideoReader(path, fps=fps, rotate=rotate) as reader:
        info = reader.info
        frames = probe_frames(reader, info.fps)
    long_side = max(info.size)
    if main_only and frames:
        d = detector.detect(frames[0])
        h = float((d.boxes[:, 3] - d.boxes[:, 1]).max()) if len(d) else 0.0
        if h * PROBE_SIZES[0] / long_side >= MIN_PERSON_PX:
            return SizeProbe(PROBE_SIZES[0], h, len(d), 1)
    heights = [(b[:, 3] - b[:, 1]) for b in (tiled_boxes(detector, f) for f in frames)]
    imgsz, h = choose_imgsz(heights, long_side, main_only)
    return SizeProbe(imgsz, h, int(sum(x.size for x in heights)), len(frames))
