"""How closely two detectors' outputs agree on the same frames (benchmarks, refinement).

Used to show that a faster setting (another runtime, crops) keeps the keypoints: people are
paired by box overlap, then joints that both call confident are compared in pixels.
"""

from __future__ import annotations

import numpy as np

from detectors.base import FrameDetections


def _area(b: np.ndarray) -> np.ndarray:
    return (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    return inter / (_area(a)[:, None] + _area(b)[None, :] - inter + 1e-9)


def keypoint_agreement(
    ref: list[FrameDetections], got: list[FrameDetections], min_score: float = 0.5
) -> tuple[float, float, int]:
    """(mean px distance of joints confident in both, share of ref people matched, joints used);
    people are paired greedily by box IoU >= 0.5, per frame."""
    dists: list[np.ndarray] = []
    found = total = 0
    for r, g in zip(ref, got, strict=True):
        total += len(r)
        if len(r) == 0 or len(g) == 0:
            continue
        iou = box_iou(r.boxes, g.boxes)
        while iou.size and iou.max() >= 0.5:
            i, j = np.unravel_index(int(iou.argmax()), iou.shape)
            both = (r.scores[i] >= min_score) & (g.scores[j] >= min_score)
            dists.append(np.linalg.norm(r.keypoints[i] - g.keypoints[j], axis=-1)[both])
            iou[i, :] = iou[:, j] = -1
            found += 1
    d = np.concatenate(dists) if dists else np.zeros(0)
    mean = float(d.mean()) if d.size else float("nan")
    return mean, found / max(total, 1), int(d.size)
