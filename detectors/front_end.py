"""The 2D front end: a video (or a keypoint file) in, clean H36M-17 tracks out.

detect_video streams frames one at a time through the detector + tracker, keeps only each
frame's keypoints, then picks the persons to lift, remaps COCO-17 -> H36M-17 and cleans the
tracks (cleaning.py). load_keypoints does the same from a file of precomputed 2D.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from detectors.base import Pose2DDetector
from detectors.cleaning import (
    DEFAULT_MIN_JOINTS,
    DEFAULT_THRESHOLD,
    clean_track,
    default_max_gap,
    one_euro,
)
from detectors.keypoint_files import read_keypoint_file
from detectors.roi import check_detector_mode
from detectors.tracking import (
    TrackStats,
    TrackStore,
    default_min_track_frames,
    default_stitch_gap,
    parse_person,
    select_tracks,
    stats_from_dense,
)
from hgmamba_core.errors import HGMambaError
from hgmamba_core.poses import Pose2DSequence, denormalize_screen, normalize_screen
from hgmamba_core.prefetch import prefetch
from hgmamba_core.skeleton import coco_to_h36m
from hgmamba_core.video import VideoReader, probe_video

DEFAULT_FPS = 30.0  # used when neither the file nor a video gives a frame rate
PREFETCH_FRAMES = 0  # frames decoded ahead on a thread: 0 (1.00x, 1.04x measured; README Speed)
# with tracking by crop the detector leaves room: decoding ahead cut the front end's 100 frames
# from 2.98-4.79 s to 2.33-2.52 s (3 rounds alternating, trainer running; README Speed)
TRACK_PREFETCH_FRAMES = 4


@dataclass(frozen=True)
class Segment:
    """Frames [start, stop) of one person (column `person` of the poses) to lift in one go."""

    person: int
    track_id: int
    start: int
    stop: int

    @property
    def length(self) -> int:
        return self.stop - self.start


@dataclass
class StageTiming:
    """Wall-clock seconds per stage; detect_s includes Ultralytics' own tracker. decode_s is the
    time the detector waited for a decoded frame (decoding itself overlaps detection)."""

    frames: int = 0
    decode_s: float = 0.0
    detect_s: float = 0.0
    post_s: float = 0.0  # our bookkeeping, person selection, remap, cleaning, smoothing

    @property
    def total_s(self) -> float:
        return self.decode_s + self.detect_s + self.post_s


@dataclass
class FrontEndResult:
    """Clean 2D poses of the chosen persons plus how they were obtained.

    poses: H36M-17 pixels, NaN outside segments; segments: per person, the frame ranges to
    lift separately; observed (F, P, 17): True where a joint was detected (False where filled
    in); all_tracks: every track seen, for messages; notes: assumptions worth telling the user.
    """

    poses: Pose2DSequence
    segments: list[Segment]
    observed: np.ndarray
    timing: StageTiming
    all_tracks: TrackStats
    notes: list[str] = field(default_factory=list)
    input_info: dict = field(default_factory=dict)  # what the source was (see input_info())


def segments_from_poses(poses: Pose2DSequence) -> list[Segment]:
    """Segments of a cleaned Pose2DSequence (e.g. one loaded from pose2d.npz): runs of frames
    with all 17 joints present, per person."""
    out = []
    full = np.isfinite(poses.keypoints).all(-1).all(-1)  # (F, P)
    for p in range(poses.num_persons):
        col = np.concatenate([[False], full[:, p], [False]]).astype(np.int8)
        d = np.diff(col)
        for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True):
            out.append(Segment(p, int(poses.track_ids[p]), int(a), int(b)))
    return out


def _smooth(kp: np.ndarray, segments: list[tuple[int, int]], fps: float, size) -> np.ndarray:
    out = kp.copy()
    for a, b in segments:
        norm = normalize_screen(kp[a:b], *size)
        out[a:b] = denormalize_screen(one_euro(norm, fps), *size)
    return out


def finish_tracks(
    keypoints: np.ndarray,
    scores: np.ndarray,
    track_ids: np.ndarray,
    *,
    layout: str,
    fps: float,
    size: tuple[int, int],
    source: str,
    max_gap: int | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    min_joints: int = DEFAULT_MIN_JOINTS,
    smooth: bool = False,
) -> tuple[Pose2DSequence, list[Segment], np.ndarray]:
    """Remap (if COCO) and clean dense (F, P, 17, 2) tracks of the chosen persons."""
    if layout == "coco":
        keypoints, scores = coco_to_h36m(keypoints, scores)
    elif layout != "h36m":
        raise HGMambaError(f"unknown 2D layout '{layout}' (coco or h36m)")
    gap = default_max_gap(fps) if max_gap is None else int(max_gap)
    if gap < 0:
        raise HGMambaError(f"--max-gap must be >= 0 frames, got {gap}")
    kp = np.full(keypoints.shape, np.nan, dtype=np.float32)
    sc = np.full(scores.shape, np.nan, dtype=np.float32)
    observed = np.zeros(scores.shape, dtype=bool)
    segments: list[Segment] = []
    for p in range(keypoints.shape[1]):
        k, s, obs, segs = clean_track(keypoints[:, p], scores[:, p], gap, threshold, min_joints)
        if smooth:
            k = _smooth(k, segs, fps, size)
        kp[:, p], sc[:, p], observed[:, p] = k, s, obs
        segments += [Segment(p, int(track_ids[p]), a, b) for a, b in segs]
    poses = Pose2DSequence(kp, sc, track_ids, fps, size, source=source, layout="h36m")
    return poses, segments, observed


@contextmanager
def _progress(enabled: bool, total: int | None, label: str) -> Iterator:
    """A Rich progress bar on stderr with frames/s; a no-op callable when disabled."""
    if not enabled:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class _FpsColumn(ProgressColumn):
        def render(self, task) -> Text:  # type: ignore[no-untyped-def]
            speed = task.finished_speed or task.speed
            return Text(f"{speed:5.1f} frames/s" if speed else "  ... frames/s")

    columns = (
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), _FpsColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(label, total=total or None)
        yield lambda: bar.advance(task)


def detect_video(
    path: str | os.PathLike,
    *,
    weights: str | os.PathLike | None = None,
    imgsz: int = 640,
    device: str = "auto",
    conf: float = 0.25,
    person: str | int = "main",
    max_gap: int | None = None,
    smooth: bool = False,
    keypoint_threshold: float = DEFAULT_THRESHOLD,
    min_track_frames: int | None = None,
    max_frames: int | None = None,
    progress: bool = True,
    detector: Pose2DDetector | None = None,
    backend: str = "torch",
    fps: float | None = None,
    rotate: int = 0,
    refine_crops: bool = False,
    stitch: bool = True,
    prefetch_frames: int | None = None,
    detector_mode: str = "full",
    crop_size: int | None = None,
) -> FrontEndResult:
    """Detect, track, select, remap and clean the people of a video, streaming its frames.

    person: main | largest | longest | all | a track id (see tracking.select_tracks).
    max_gap: frames of missing data bridged by interpolation (default about 0.5 s).
    min_track_frames: shortest track kept by person="all" (default 0.5 s, at least 5 frames).
    stitch: join a track to the one it continues after a short loss (tracking.py).
    detector: reuse an already loaded detector (its tracker is reset); else YOLO is loaded
    with `weights`, `imgsz`, `device`, `conf` and `backend` ("torch", "onnx", "openvino": CPU
    only, exported once and cached, need their extra; "auto": the fastest installed).
    refine_crops: re-run pose on each tracked person's upscaled crop (detectors/refine.py). fps: overrides the source's rate (an image
    folder has none: 30 unless given). The rate used is the mean of the decoded frames'
    timestamps, which are kept (variable-frame-rate videos). prefetch_frames: frames decoded
    ahead on a worker thread (0: decode inline; None: PREFETCH_FRAMES for whole frames,
    TRACK_PREFETCH_FRAMES when tracking by crop). detector_mode: "full" (every frame whole,
    ByteTrack ids) or "track" (whole frames every ~1 s and when a person is lost, crops of the
    followed people in between: detectors/roi.py; with person="main" the crops follow only the
    likeliest main person, the others are seen on the whole frames); crop_size: its crop side
    (default 192).
    """
    person = parse_person(person)
    detector_mode = check_detector_mode(detector_mode)
    if prefetch_frames is None:
        prefetch_frames = TRACK_PREFETCH_FRAMES if detector_mode == "track" else PREFETCH_FRAMES
    if detector_mode == "track" and refine_crops:
        raise HGMambaError("--refine-crops needs --detector-mode full (track mode crops already)")
    # fails fast, before loading the model, on bad input
    reader = VideoReader(path, fps=fps, rotate=rotate)
    info = reader.info
    notes: list[str] = []
    with reader:
        follow = "main" if person == "main" else "all"
        if detector is None:
            det = load_detector(
                weights, imgsz, device, conf, backend, refine_crops, info.size,
                mode=detector_mode, fps=fps or info.fps, crop_size=crop_size, follow=follow,
            )  # fmt: skip
        else:
            det = _in_mode(
                detector, detector_mode, weights, fps or info.fps, info.size, crop_size, follow
            )
        notes.extend(getattr(det, "notes", ()))  # e.g. an export that fell back to torch
        det.reset()
        store = TrackStore()
        timing = StageTiming()
        total = info.frame_count if max_frames is None else min(info.frame_count, max_frames)
        # prefetch_frames > 0: decoding runs ahead on a worker thread, overlapping detection;
        # closed (worker joined) before the reader closes its container, whatever happens below
        frames = prefetch(reader, prefetch_frames)
        with closing(frames), _progress(progress, total, f"2D {Path(path).name}") as advance:
            i = 0
            while max_frames is None or i < max_frames:
                t0 = time.perf_counter()
                frame = next(frames, None)
                t1 = time.perf_counter()
                if frame is None:
                    break
                dets = det.track(frame)
                t2 = time.perf_counter()
                store.add(i, dets)
                t3 = time.perf_counter()
                timing.decode_s += t1 - t0
                timing.detect_s += t2 - t1
                timing.post_s += t3 - t2
                advance()
                i += 1
        timing.frames = i
    if timing.frames == 0:
        raise HGMambaError(f"no frames decoded from {path}")
    t0 = time.perf_counter()
    fps, input_info = _rate_and_notes(reader, notes)
    if stitch:
        joined = store.stitch_fragments(default_stitch_gap(fps), fps)
        if joined:
            notes.append(f"{len(joined)} track fragment(s) joined to the person they continue")
    stats = store.stats()
    min_frames = default_min_track_frames(fps) if min_track_frames is None else min_track_frames
    min_frames = min(min_frames, timing.frames)  # a one-image clip or a very short video
    chosen = select_tracks(stats, person, min_frames)
    kp, sc = store.dense(chosen)
    poses, segments, observed = finish_tracks(
        kp, sc, np.asarray(chosen), layout="coco", fps=fps, size=info.size, source=str(path),
        max_gap=max_gap, threshold=keypoint_threshold, smooth=smooth,
    )  # fmt: skip
    poses.timestamps = np.asarray(reader.timestamps[: poses.num_frames], dtype=np.float64)
    timing.post_s += time.perf_counter() - t0
    if not segments:
        notes.append("the chosen person never had enough confident joints to lift")
    return FrontEndResult(poses, segments, observed, timing, stats, notes, input_info)


def _rate_and_notes(reader: VideoReader, notes: list[str]) -> tuple[float, dict]:
    """The frame rate to use (the decoded timestamps' mean) and what to record about the input;
    appends the user-facing notes (frame-count mismatch, variable rate, assumed rate)."""
    info = reader.info
    fps = reader.mean_fps
    if info.kind == "images" and not info.fps:
        fps = DEFAULT_FPS
        notes.append(
            f"{reader.path.name}/: image frames have no rate; assuming {fps:g} fps (--fps)"
        )
    elif info.kind == "video" and info.fps <= 0 and reader.frames_read < 2:
        fps = DEFAULT_FPS
        notes.append(f"the video does not state its frame rate; assuming {fps:g} fps")
    elif not np.isfinite(fps) or fps <= 0:
        fps = DEFAULT_FPS
    mismatch = reader.mismatch_note()
    if mismatch:
        notes.append(mismatch)
    if reader.variable_frame_rate:
        notes.append(
            f"variable frame rate: {fps:.2f} frames/s on average (stated {info.fps:g}); "
            "per-frame times are in pose2d.npz and pose3d.json/csv"
        )
    if reader.skipped_packets:
        notes.append(f"{reader.skipped_packets} damaged packet(s) skipped while decoding")
    record = {
        "input_kind": info.kind,
        "frames_decoded": reader.frames_read,
        "frames_in_header": info.frames_in_header,
        "fps_stated": info.fps or None,
        "fps_mean": float(fps),
        "variable_frame_rate": reader.variable_frame_rate,
        "rotation_deg": info.rotation,
        "rotate_deg": reader.rotate,  # the --rotate part of it (`hgmamba render` re-applies it)
    }
    return float(fps), record


def _in_mode(
    det: Pose2DDetector,
    mode: str,
    weights: str | os.PathLike | None,
    fps: float | None,
    frame_size: tuple[int, int],
    crop_size: int | None,
    follow: str,
) -> Pose2DDetector:
    """A given detector as the mode wants it: a plain YOLO detector (e.g. the one the size
    probe loaded) is wrapped for tracking by crop; anything else runs as it is."""
    from detectors.roi import RoiTracker, build_roi_tracker
    from detectors.yolo import YoloPoseDetector

    if mode != "track" or isinstance(det, RoiTracker) or not isinstance(det, YoloPoseDetector):
        return det
    return build_roi_tracker(
        det, weights, fps=fps, frame_size=frame_size, crop_size=crop_size, follow=follow
    )


def load_detector(
    weights: str | os.PathLike | None,
    imgsz: int,
    device: str,
    conf: float,
    backend: str,
    refine: bool = False,
    frame_size: tuple[int, int] | None = None,
    *,
    mode: str = "full",
    fps: float | None = None,
    crop_size: int | None = None,
    follow: str = "all",
) -> Pose2DDetector:
    from detectors.yolo import YoloPoseDetector

    det = YoloPoseDetector(
        weights, imgsz=imgsz, device=device, conf=conf, backend=backend, frame_size=frame_size
    )
    if mode == "track":
        from detectors.roi import build_roi_tracker

        return build_roi_tracker(
            det, weights, fps=fps, frame_size=frame_size, crop_size=crop_size, follow=follow
        )
    if not refine:
        return det
    from detectors.refine import DEFAULT_CROP_IMGSZ, CropRefiner

    crop = YoloPoseDetector(weights, DEFAULT_CROP_IMGSZ, device=device, conf=conf, backend=backend)
    return CropRefiner(det, crop)


def _infer_size(kp: np.ndarray) -> tuple[int, int]:
    finite = kp[np.isfinite(kp).all(-1)]
    if finite.size == 0:
        return (1, 1)
    hi = np.ceil(finite.max(0)).astype(int) + 1
    return (max(int(hi[0]), 1), max(int(hi[1]), 1))


def load_keypoints(
    path: str | os.PathLike,
    *,
    layout: str | None = None,
    video: str | os.PathLike | None = None,
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    rotate: int = 0,
    entry: str | None = None,
    person: str | int = "main",
    max_gap: int | None = None,
    smooth: bool = False,
    keypoint_threshold: float = DEFAULT_THRESHOLD,
    min_track_frames: int | None = None,
) -> FrontEndResult:
    """Precomputed 2D (keypoint_files formats) -> the same cleaned result as detect_video.

    Frame size and fps: the explicit argument, else the file's own, else the given video's,
    else fps 30 and a size just enclosing every keypoint (both reported in notes, since the
    size sets the normalization). Our own pose2d.npz files are not re-thresholded. In a
    VideoPose3D file holding several videos, `entry` names one (default: the video's file name).
    """
    t0 = time.perf_counter()
    person = parse_person(person)
    hint = Path(video).name if video is not None else None
    raw = read_keypoint_file(path, layout=layout, entry=entry, video_name=hint)
    notes: list[str] = []
    vinfo = probe_video(video, rotate=rotate) if video is not None else None
    use_size = size or raw.size or (vinfo.size if vinfo else None)
    use_fps = fps or raw.fps or (vinfo.fps if vinfo and vinfo.fps > 0 else None)
    if use_size is None:
        use_size = _infer_size(raw.keypoints)
        notes.append(
            f"{path} does not give the frame size; assuming {use_size[0]}x{use_size[1]} (the "
            "keypoints' extent): pass the video or --size for a correct normalization"
        )
    if use_fps is None:
        use_fps = DEFAULT_FPS
        notes.append(f"{path} does not give the frame rate; assuming {use_fps:g} fps")
    if vinfo is not None and vinfo.frame_count and vinfo.frame_count != raw.keypoints.shape[0]:
        notes.append(
            f"{path} has {raw.keypoints.shape[0]} frames but {video} has {vinfo.frame_count}"
        )
    stats = stats_from_dense(raw.keypoints, raw.track_ids)
    min_frames = default_min_track_frames(use_fps) if min_track_frames is None else min_track_frames
    chosen = select_tracks(stats, person, min_frames)
    cols = [int(np.flatnonzero(raw.track_ids == t)[0]) for t in chosen]
    poses, segments, observed = finish_tracks(
        raw.keypoints[:, cols], raw.scores[:, cols], raw.track_ids[cols], layout=raw.layout,
        fps=float(use_fps), size=tuple(use_size), source=raw.source, max_gap=max_gap,
        threshold=0.0 if raw.cleaned else keypoint_threshold, smooth=smooth,
    )  # fmt: skip
    timing = StageTiming(frames=poses.num_frames, post_s=time.perf_counter() - t0)
    return FrontEndResult(poses, segments, observed, timing, stats, notes)
