"""Top-down refinement: find and track people at a modest size, then re-run pose on crops.

Small people (the demo clip's are ~80 px tall) get poor keypoints when the whole frame is
shrunk to 640, and running the whole frame at 960 costs 2-3x more. Instead the frame is
detected and tracked at its usual size, and each tracked person's box (with a margin) is cut
out and given to the same pose model alone, where it is scaled up to `crop_imgsz`; the crop's
keypoints replace the frame's. Boxes, box scores and track ids stay those of the frame pass,
so ByteTrack behaves exactly as without refinement.
"""

from __future__ import annotations

import numpy as np

from detectors.base import FrameDetections, Pose2DDetector
from detectors.compare import box_iou

DEFAULT_CROP_IMGSZ = 256
CROP_MARGIN = 0.25  # of the box's width/height, on each side: limbs outside the box fit
MIN_IOU = 0.3  # a crop detection must overlap the tracked box this much to replace it


def crop_window(box: np.ndarray, size: tuple[int, int], margin: float = CROP_MARGIN) -> tuple:
    """(x0, y0, x1, y1) integer pixels of the box grown by `margin`, clipped to the frame."""
    w, h = size
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = margin * (x2 - x1), margin * (y2 - y1)
    x0 = int(max(0, np.floor(x1 - mx)))
    y0 = int(max(0, np.floor(y1 - my)))
    return x0, y0, int(min(w, np.ceil(x2 + mx))), int(min(h, np.ceil(y2 + my)))


def _pick(found: FrameDetections, box: np.ndarray) -> int | None:
    """The crop detection that is the tracked person (best IoU with its box), if any."""
    if len(found) == 0:
        return None
    iou = box_iou(box[None], found.boxes)[0]
    best = int(iou.argmax())
    return best if iou[best] >= MIN_IOU else None


class CropRefiner:
    """A Pose2DDetector: `frame_detector` finds and tracks, `crop_detector` (the same weights at
    a small imgsz) redoes each person's keypoints on an upscaled crop."""

    name = "yolo-pose+crops"

    def __init__(self, frame_detector: Pose2DDetector, crop_detector: Pose2DDetector) -> None:
        self.frame_detector = frame_detector
        self.crop_detector = crop_detector
        self.notes: list[str] = [
            *getattr(frame_detector, "notes", ()),
            *getattr(crop_detector, "notes", ()),
        ]

    def refine(self, frame: np.ndarray, dets: FrameDetections) -> FrameDetections:
        """`dets` with each person's keypoints and scores from its own crop (kept when the
        crop finds nobody matching the box)."""
        kp, sc = dets.keypoints.copy(), dets.scores.copy()
        size = (frame.shape[1], frame.shape[0])
        for i, box in enumerate(dets.boxes):
            x0, y0, x1, y1 = crop_window(box, size)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            found = self.crop_detector.detect(np.ascontiguousarray(frame[y0:y1, x0:x1]))
            offset = np.array([x0, y0], np.float32)
            j = _pick(found, box - np.tile(offset, 2))
            if j is not None:
                kp[i] = found.keypoints[j] + offset
                sc[i] = found.scores[j]
        return FrameDetections(kp, sc, dets.boxes, dets.box_scores, dets.track_ids)

    def detect(self, frame: np.ndarray) -> FrameDetections:
        return self.refine(frame, self.frame_detector.detect(frame))

    def track(self, frame: np.ndarray) -> FrameDetections:
        return self.refine(frame, self.frame_detector.track(frame))

    def reset(self) -> None:
        self.frame_detector.reset()
