"""ROI tracking: find people on the whole frame now and then, follow each one by a crop between.

A full-frame pass of YOLO-Pose on a 720p frame costs ~6x a pass on a 192 px crop (README Speed),
and with few people the crops around where they will be are all the detector needs to see:
the way MediaPipe Pose gets its speed (detect, then track by crop). Every `full_every` frames,
and on any frame where a crop loses its person, the whole frame is detected again and its
people are matched to the followed tracks by box overlap (unmatched confident ones start new
tracks, so a person entering is picked up at the next full pass). In between, each followed
person's square crop (its last box, grown CROP_SCALE x, moved by its velocity) is cut out at
`crop_size` px, all crops run through the pose network in one call where the backend batches,
and the best detection in each crop, mapped back to frame pixels, is that person's pose. When
the crops would cost more than one full frame (many people), the frame is detected whole.

The output is the same FrameDetections (boxes, keypoints, scores, track ids >= 0) as the
ByteTrack path, so TrackStore, cleaning, lift, world frame and render are unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from detectors.base import NUM_COCO_JOINTS, FrameDetections, box_areas
from detectors.compare import box_iou
from hgmamba_core.errors import HGMambaError

DETECTOR_MODES = ("full", "track")
FOLLOW_CHOICES = ("all", "main")
DEFAULT_CROP_SIZE = 192  # crop side given to the pose network (README Speed: 192/256/320)
CROP_SCALE = 1.4  # crop side / the person's longer box side: room for motion and limbs
FULL_EVERY_S = 1.0  # seconds between full-frame passes that find new people
LOW_BOX_CONF = 0.1  # a crop detection this sure may extend a track (ByteTrack's low boxes)
LOST_KPT_CONF = 0.3  # mean keypoint confidence below which a crop has lost its person
MATCH_IOU = 0.3  # a full-frame box overlapping a followed track's predicted box this much is it
DUPLICATE_IOU = 0.7  # two tracks whose boxes overlap this much follow one person: one is dropped
# per network call, in input pixels' worth of time: OpenVINO on 2 cores ran ~3k px per ms
# (a 384x640 frame 85-95 ms, a 192 px crop 15 ms), with ~2-3 ms a call on top (crops cut,
# converted); only to decide when crops would cost more than one whole frame
CALL_OVERHEAD_PX = 8192
PAD_VALUE = 114  # what Ultralytics' letterbox pads with
# OpenVINO threads for the crops (None: its default, every core). Load decides: a 192 px crop
# took 13.0 ms on 1 thread against 20.0 on 2 with the training job running, but 2 threads won
# by 10-15 % in bench/roi.py a little later (README Speed); the default stays
CROP_THREADS: int | None = None


def check_detector_mode(mode: str) -> str:
    """The --detector-mode value, validated (one-line error otherwise)."""
    m = str(mode).strip().lower()
    if m not in DETECTOR_MODES:
        raise HGMambaError(
            f"--detector-mode must be one of {', '.join(DETECTOR_MODES)}, got '{mode}'"
        )
    return m


def full_every_frames(fps: float | None, seconds: float = FULL_EVERY_S) -> int:
    """Frames between full-frame passes: `seconds` of video, at least 1."""
    return max(1, int(round(seconds * (fps if fps and fps > 0 else 30.0))))


@dataclass(frozen=True)
class CropWindow:
    """A square region of the frame (top-left x0, y0 and side, frame pixels; may reach past the
    frame's edges) scaled to `size` x `size` pixels for the network."""

    x0: float
    y0: float
    side: float
    size: int

    @property
    def scale(self) -> float:
        """Crop pixels per frame pixel."""
        return self.size / self.side

    def to_frame(self, xy: np.ndarray) -> np.ndarray:
        """Crop pixel coordinates (..., 2) -> frame pixel coordinates."""
        return np.asarray(xy, np.float32) / self.scale + np.array([self.x0, self.y0], np.float32)

    def to_crop(self, xy: np.ndarray) -> np.ndarray:
        """Frame pixel coordinates (..., 2) -> crop pixel coordinates."""
        return (np.asarray(xy, np.float32) - np.array([self.x0, self.y0], np.float32)) * self.scale

    def box_to_frame(self, box: np.ndarray) -> np.ndarray:
        return self.to_frame(np.asarray(box, np.float32).reshape(2, 2)).reshape(4)

    def box_to_crop(self, box: np.ndarray) -> np.ndarray:
        return self.to_crop(np.asarray(box, np.float32).reshape(2, 2)).reshape(4)

    def cut(self, frame: np.ndarray) -> np.ndarray:
        """The (size, size, 3) crop: one affine warp (scale + shift), padded outside the frame.

        Coordinates are continuous with 0 at a pixel's outer edge (pixel i spans [i, i + 1]),
        as the network's keypoints are: crop point (u, v) shows frame point to_frame((u, v)).
        warpAffine works in pixel-centre indices, hence the half-pixel terms."""
        s = self.scale
        tx, ty = s * (0.5 - self.x0) - 0.5, s * (0.5 - self.y0) - 0.5
        m = np.array([[s, 0.0, tx], [0.0, s, ty]], np.float64)
        return cv2.warpAffine(
            frame, m, (self.size, self.size), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=(PAD_VALUE,) * 3,
        )  # fmt: skip


def window_around(
    box: np.ndarray, velocity: np.ndarray, size: int, scale: float = CROP_SCALE
) -> CropWindow:
    """The crop for a person last seen in `box` (x1 y1 x2 y2) moving `velocity` px/frame: a
    square `scale` x its longer side, centred where the box centre will be next frame."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(scale * max(x2 - x1, y2 - y1), 16.0)
    cx = (x1 + x2) / 2.0 + float(velocity[0])
    cy = (y1 + y2) / 2.0 + float(velocity[1])
    return CropWindow(cx - side / 2.0, cy - side / 2.0, side, int(size))


@dataclass(frozen=True)
class CropPose:
    """The person found in one crop, in crop pixels."""

    box: np.ndarray  # (4,) x1 y1 x2 y2
    box_score: float
    keypoints: np.ndarray  # (17, 2)
    scores: np.ndarray  # (17,)


def best_in_crop(raw: np.ndarray, expected: np.ndarray, min_score: float) -> CropPose | None:
    """The followed person among one crop's raw YOLO-Pose outputs (56, anchors): cx cy w h,
    person score, 17 x (x, y, confidence), crop pixels. Picks the anchor with the best score x
    overlap with the box where the person is expected, so a passer-by in the crop is not
    taken for them; None when no anchor scores `min_score` and overlaps at all."""
    score = raw[4]
    keep = np.flatnonzero(score >= min_score)
    if keep.size == 0:
        return None
    c = raw[:, keep]
    boxes = np.stack([c[0] - c[2] / 2, c[1] - c[3] / 2, c[0] + c[2] / 2, c[1] + c[3] / 2], -1)
    iou = box_iou(np.asarray(expected, np.float32)[None], boxes)[0]
    rank = c[4] * iou
    j = int(rank.argmax())
    if rank[j] <= 0.0:
        return None
    kp = c[5:, j].reshape(NUM_COCO_JOINTS, 3)
    return CropPose(boxes[j].astype(np.float32), float(c[4, j]), kp[:, :2].copy(), kp[:, 2].copy())


class CropPoseNet:
    """The pose network alone (no Ultralytics pre/post-processing) on square crops of one size:
    (B, size, size, 3) BGR uint8 in, (B, 56, anchors) raw outputs out. OpenVINO runs the
    export with a dynamic batch (all crops in one call), torch batches natively, ONNX Runtime
    (a fixed batch-1 export) goes crop by crop."""

    def __init__(
        self,
        weights: str | os.PathLike,
        size: int,
        backend: str,
        device: str,
        threads: int | None = CROP_THREADS,
    ) -> None:
        """threads: OpenVINO inference threads (None: its default, every core)."""
        self.size = int(size)
        self.backend = backend
        self._ov: Any = None
        self._auto: Any = None
        if backend == "openvino":
            import openvino as ov

            folder = os.fspath(weights)
            xml = next(p for p in sorted(os.listdir(folder)) if p.endswith(".xml"))
            core = ov.Core()
            model = core.read_model(os.path.join(folder, xml))
            model.reshape([-1, 3, self.size, self.size])
            config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
            if threads:
                config["INFERENCE_NUM_THREADS"] = int(threads)
            self._ov = core.compile_model(model, "CPU", config)
        else:
            import torch
            from ultralytics.nn.autobackend import AutoBackend

            from detectors.yolo import quiet_ultralytics

            # Ultralytics' device strings: "cpu", "mps" or a CUDA index such as "0"
            dev = torch.device("cuda", int(device)) if device.isdigit() else torch.device(device)
            with quiet_ultralytics():
                self._auto = AutoBackend(os.fspath(weights), device=dev, verbose=False)
            self._device = dev

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(crops[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
        x *= 1.0 / 255.0
        if self._ov is not None:
            return np.asarray(self._ov(x)[0], np.float32)
        import torch

        with torch.inference_mode():
            if self.backend == "torch":
                return self._forward(torch.from_numpy(x))
            return np.concatenate(
                [self._forward(torch.from_numpy(x[i : i + 1])) for i in range(len(x))]
            )

    def _forward(self, x: Any) -> np.ndarray:
        y = self._auto(x.to(self._device))
        y = y[0] if isinstance(y, (list, tuple)) else y
        return y.float().cpu().numpy()


@dataclass
class _Followed:
    """One tracked person: id, last box (frame pixels) and the frame it was seen in, velocity
    (px/frame), box area summed over the full-frame passes (an unbiased sample of everyone),
    and whether crops follow them between those passes."""

    track_id: int
    box: np.ndarray
    frame: int
    score: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))
    full_area: float = 0.0
    cropped: bool = True

    def predicted_box(self, frame: int) -> np.ndarray:
        step = self.velocity * float(frame - self.frame)
        return self.box + np.tile(step, 2).astype(np.float32)

    def update(self, box: np.ndarray, score: float, frame: int) -> None:
        gap = max(frame - self.frame, 1)
        moved = ((box[:2] + box[2:]) - (self.box[:2] + self.box[2:])) / (2.0 * gap)
        self.velocity = (0.5 * self.velocity + 0.5 * moved).astype(np.float32)
        self.box = np.asarray(box, np.float32)
        self.score = float(score)
        self.frame = frame


@dataclass
class RoiStats:
    """How the frames were processed: full-frame passes (scheduled, after a lost crop, or
    because the crops would cost more) and crops run."""

    frames: int = 0
    full_scheduled: int = 0
    full_lost: int = 0
    full_costly: int = 0
    crops: int = 0

    @property
    def full_passes(self) -> int:
        return self.full_scheduled + self.full_lost + self.full_costly


class RoiTracker:
    """A Pose2DDetector that tracks by crop (see the module doc). `frame_detector` finds people
    on whole frames (its `detect(frame, conf)`); `crop_net` runs the pose network on crops.

    follow="all" crops everyone between full passes; follow="main" only the likeliest main
    person (the largest box area summed over the full passes, as `--person main` chooses),
    the others being seen at full passes only: the MediaPipe way, for one person's video."""

    name = "yolo-pose+roi"

    def __init__(
        self,
        frame_detector: Any,
        crop_net: CropPoseNet,
        *,
        full_every: int,
        conf: float,
        full_input_px: int,
        crop_scale: float = CROP_SCALE,
        follow: str = "all",
    ) -> None:
        if full_every < 1:
            raise HGMambaError(f"full-frame pass every {full_every} frames: need at least 1")
        if follow not in FOLLOW_CHOICES:
            raise ValueError(f"follow must be one of {FOLLOW_CHOICES}, got {follow!r}")
        self.frame_detector = frame_detector
        self.crop_net = crop_net
        self.full_every = int(full_every)
        self.conf = float(conf)
        self.crop_scale = float(crop_scale)
        self.follow = follow
        self.full_cost = float(full_input_px + CALL_OVERHEAD_PX)
        self.crop_cost = float(crop_net.size**2 + CALL_OVERHEAD_PX)
        self.notes: list[str] = list(getattr(frame_detector, "notes", ()))
        self.reset()

    def reset(self) -> None:
        """Forget everyone followed (ids restart at 1) before a new video."""
        self._tracks: list[_Followed] = []
        self._next_id = 1
        self._frame = -1
        self._since_full = self.full_every  # the first frame is a full pass
        self.stats = RoiStats()
        self.last_was_full = False  # how the latest frame was processed (tests, benchmarks)

    def detect(self, frame: np.ndarray) -> FrameDetections:
        return self.frame_detector.detect(frame)

    def track(self, frame: np.ndarray) -> FrameDetections:
        """The people of the next frame, with ids kept across calls."""
        self._frame += 1
        self.stats.frames += 1
        self.last_was_full = True
        n = sum(t.cropped for t in self._tracks)
        if self._since_full >= self.full_every or n == 0:
            self.stats.full_scheduled += 1
            return self._full_pass(frame)
        if n * self.crop_cost > self.full_cost:
            self.stats.full_costly += 1
            return self._full_pass(frame)
        out = self._crop_pass(frame)
        if out is None:
            self.stats.full_lost += 1
            return self._full_pass(frame)
        self._since_full += 1
        self.last_was_full = False
        return out

    def _crop_pass(self, frame: np.ndarray) -> FrameDetections | None:
        """Every cropped person from their own crop; None when a crop lost its person."""
        i, size = self._frame, self.crop_net.size
        tracks = [t for t in self._tracks if t.cropped]
        wins = [
            window_around(t.predicted_box(i), np.zeros(2), size, self.crop_scale) for t in tracks
        ]
        raw = self.crop_net(np.stack([w.cut(frame) for w in wins]))
        self.stats.crops += len(wins)
        found = []
        for t, w, r in zip(tracks, wins, raw, strict=True):
            pose = best_in_crop(r, w.box_to_crop(t.predicted_box(i)), LOW_BOX_CONF)
            if pose is None or float(np.mean(pose.scores)) < LOST_KPT_CONF:
                return None
            found.append(
                (w.box_to_frame(pose.box), pose.box_score, w.to_frame(pose.keypoints), pose.scores)
            )
        for t, (box, score, _, _) in zip(tracks, found, strict=True):
            t.update(box, score, i)
        keep = _unique(tracks)
        dropped = {tracks[k].track_id for k in range(len(tracks)) if k not in keep}
        self._tracks = [t for t in self._tracks if t.track_id not in dropped]
        return _detections([found[k] for k in keep], [tracks[k].track_id for k in keep])

    def _full_pass(self, frame: np.ndarray) -> FrameDetections:
        """Detect the whole frame; match its people to the tracks (greedy on box overlap with
        their predicted boxes), start tracks for unmatched confident ones, and forget those
        the frame did not find."""
        i = self._frame
        self._since_full = 1
        dets = self.frame_detector.detect(frame, conf=LOW_BOX_CONF)
        ids = np.full(len(dets), -1, np.int64)
        matched: dict[int, int] = {}
        if self._tracks and len(dets):
            pred = np.stack([t.predicted_box(i) for t in self._tracks])
            iou = box_iou(pred, dets.boxes)
            for flat in np.argsort(-iou, axis=None, kind="stable"):
                ti, di = divmod(int(flat), len(dets))
                if iou[ti, di] < MATCH_IOU:
                    break
                if ti in matched or ids[di] >= 0:
                    continue
                matched[ti] = di
                ids[di] = self._tracks[ti].track_id
        kept = []
        for ti, di in matched.items():
            t = self._tracks[ti]
            t.update(dets.boxes[di], float(dets.box_scores[di]), i)
            kept.append(t)
        for di in np.flatnonzero(ids < 0):
            if dets.box_scores[di] >= self.conf:
                ids[di] = self._next_id
                kept.append(
                    _Followed(self._next_id, dets.boxes[di].copy(), i, float(dets.box_scores[di]))
                )
                self._next_id += 1
        for t in kept:
            t.full_area += float(box_areas(t.box[None])[0])
        self._tracks = sorted(kept, key=lambda t: t.track_id)
        self._choose_cropped()
        sel = np.flatnonzero(ids >= 0)
        return FrameDetections(
            dets.keypoints[sel], dets.scores[sel], dets.boxes[sel], dets.box_scores[sel], ids[sel]
        )

    def _choose_cropped(self) -> None:
        """Who the crops follow until the next full pass: everyone, or the likeliest main."""
        if self.follow == "all" or not self._tracks:
            for t in self._tracks:
                t.cropped = True
            return
        best = max(self._tracks, key=lambda t: (t.full_area, -t.track_id))
        for t in self._tracks:
            t.cropped = t is best


def _unique(tracks: list[_Followed]) -> list[int]:
    """Indices of the tracks to keep: of two whose boxes overlap DUPLICATE_IOU, the surer."""
    if len(tracks) < 2:
        return list(range(len(tracks)))
    boxes = np.stack([t.box for t in tracks])
    iou = box_iou(boxes, boxes)
    keep: list[int] = []
    for k in sorted(range(len(tracks)), key=lambda k: -tracks[k].score):
        if all(iou[k, j] < DUPLICATE_IOU for j in keep):
            keep.append(k)
    return sorted(keep)


def _detections(rows: list[tuple], ids: list[int]) -> FrameDetections:
    if not rows:
        return FrameDetections.empty()
    boxes, scores, kps, kscores = zip(*rows, strict=True)
    return FrameDetections(
        np.stack(kps), np.stack(kscores), np.stack(boxes), np.array(scores), np.array(ids)
    )


def build_roi_tracker(
    frame_detector: Any,
    weights: str | os.PathLike | None,
    *,
    fps: float | None,
    frame_size: tuple[int, int] | None = None,
    crop_size: int | None = None,
    full_every_s: float = FULL_EVERY_S,
    crop_scale: float = CROP_SCALE,
    follow: str = "all",
    crop_threads: int | None = CROP_THREADS,
) -> RoiTracker:
    """A RoiTracker around a loaded YoloPoseDetector: the same weights on `crop_size` crops
    through the same backend (an export per crop size, cached like the frame's)."""
    from detectors.backends import export_weights, fitted_input
    from detectors.yolo import resolve_weights

    size = DEFAULT_CROP_SIZE if crop_size is None else int(crop_size)
    if size < 32 or size % 32:
        raise HGMambaError(f"--crop-size must be a positive multiple of 32, got {size}")
    pt, _ = resolve_weights(weights)
    backend = frame_detector.backend
    crop_weights = pt if backend == "torch" else export_weights(pt, size, backend)
    net = CropPoseNet(crop_weights, size, backend, frame_detector.device, crop_threads)
    shape = frame_detector.input_size  # torch letterboxes to about the fitted export's shape
    h, w = shape if isinstance(shape, tuple) else _pair(fitted_input(shape, frame_size))
    return RoiTracker(
        frame_detector, net, full_every=full_every_frames(fps, full_every_s),
        conf=frame_detector.conf, full_input_px=int(h * w), crop_scale=crop_scale,
        follow=follow,
    )  # fmt: skip


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return size if isinstance(size, tuple) else (size, size)
