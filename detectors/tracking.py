"""Per-track bookkeeping while streaming, and the choice of whom to lift (`--person`).

While a video streams only each frame's keypoints are kept (sparse, per track id), never the
frames; dense (frames, persons, 17, 2) arrays are built at the end for the chosen tracks only,
so a crowded 10-minute video does not allocate frames x all-tracks arrays.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from detectors.base import NUM_COCO_JOINTS, FrameDetections, box_areas
from hgmamba_core.errors import HGMambaError

PERSON_CHOICES = ("main", "largest", "longest", "all")
# `--person all` keeps tracks seen in at least this many seconds' worth of frames (and at
# least MIN_TRACK_FRAMES_FLOOR frames). ByteTrack already confirms a track over two frames
# and fragments of one person are joined (stitch_fragments), so what is left this short is
# mostly a real person seen briefly (in a crowd, behind a post): the lifter pads it.
MIN_TRACK_SECONDS = 0.5
MIN_TRACK_FRAMES_FLOOR = 5
# Fragments: a track that starts within STITCH_MAX_GAP_S after another one ended, where that
# one's last motion predicts it (within STITCH_TOL_HEIGHTS + STITCH_TOL_HEIGHTS_PER_S x gap
# person heights, heights within STITCH_HEIGHT_RATIO), continues it (the tracker lost the
# person for a moment and gave them a new id).
STITCH_MAX_GAP_S = 1.0
STITCH_TOL_HEIGHTS = 0.5
STITCH_TOL_HEIGHTS_PER_S = 0.5
STITCH_HEIGHT_RATIO = 1.5
STITCH_VELOCITY_FRAMES = 5


def default_min_track_frames(fps: float) -> int:
    """Frames a track needs to count for `--person all`: 1 s of video, at least 5 frames."""
    return max(MIN_TRACK_FRAMES_FLOOR, int(round(MIN_TRACK_SECONDS * (fps or 0.0))))


def parse_person(value: str | int) -> str | int:
    """'main' | 'largest' | 'longest' | 'all' | a track id (int) from the --person string."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    v = str(value).strip().lower()
    if v in PERSON_CHOICES:
        return v
    try:
        return int(v)
    except ValueError:
        raise HGMambaError(
            f"--person must be one of {', '.join(PERSON_CHOICES)} or a track id, got '{value}'"
        ) from None


@dataclass
class _Track:
    frames: list[int] = field(default_factory=list)
    keypoints: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)  # x1 y1 x2 y2

    def extend(self, other: _Track) -> None:
        """Append a later track's frames (no overlap in time)."""
        self.frames += other.frames
        self.keypoints += other.keypoints
        self.scores += other.scores
        self.boxes += other.boxes


@dataclass(frozen=True)
class TrackEnd:
    """Where a track was first / last seen: frame, box centre (x, y) and height, pixels."""

    frame: int
    centre: np.ndarray
    height: float
    velocity: np.ndarray  # pixels per frame over its last (or first) few frames


def _track_end(frames: list[int], boxes: list[np.ndarray], last: bool) -> TrackEnd:
    k = min(STITCH_VELOCITY_FRAMES, len(frames))
    fr = np.asarray(frames[-k:] if last else frames[:k], dtype=np.float64)
    bx = np.asarray(boxes[-k:] if last else boxes[:k], dtype=np.float64)
    centres = (bx[:, :2] + bx[:, 2:]) / 2.0
    span = fr[-1] - fr[0]
    vel = (centres[-1] - centres[0]) / span if span > 0 else np.zeros(2)
    i = -1 if last else 0
    return TrackEnd(int(fr[i]), centres[i], float(bx[i, 3] - bx[i, 1]), vel)


def stitch_cost(end: TrackEnd, start: TrackEnd, max_gap: int, fps: float) -> float | None:
    """How far (in tolerances, < 1 to link) `start` lies from where `end`'s motion predicts
    it; None when the two cannot be one person (overlap, gap too long, other size)."""
    gap = start.frame - end.frame
    if gap < 1 or gap > max_gap:
        return None
    h = max(min(end.height, start.height), 1.0)
    if max(end.height, start.height) > STITCH_HEIGHT_RATIO * h:
        return None
    predicted = end.centre + end.velocity * gap
    tol = h * (STITCH_TOL_HEIGHTS + STITCH_TOL_HEIGHTS_PER_S * gap / max(fps, 1e-6))
    cost = float(np.linalg.norm(start.centre - predicted)) / tol
    return cost if cost < 1.0 else None


def default_stitch_gap(fps: float) -> int:
    """Longest break (frames) between two fragments joined as one person: about 1 s."""
    return max(1, int(round(STITCH_MAX_GAP_S * (fps or 30.0))))


@dataclass
class TrackStats:
    """Summary of every track: id, frames seen, summed and mean box area (pixels^2)."""

    track_ids: np.ndarray
    frame_counts: np.ndarray
    area_sums: np.ndarray

    @property
    def mean_areas(self) -> np.ndarray:
        return self.area_sums / np.maximum(self.frame_counts, 1)


class TrackStore:
    """Accumulates tracked detections frame by frame (COCO-17 keypoints, pixels)."""

    def __init__(self) -> None:
        self.num_frames = 0
        self._tracks: dict[int, _Track] = {}

    def add(self, frame_index: int, dets: FrameDetections) -> None:
        """Record one frame. Detections without a track id (-1) are unconfirmed and dropped;
        if an id appears twice in a frame the higher-scoring box wins."""
        self.num_frames = max(self.num_frames, frame_index + 1)
        if len(dets) == 0:
            return
        order = np.argsort(-dets.box_scores, kind="stable")
        seen: set[int] = set()
        for i in order:
            tid = int(dets.track_ids[i])
            if tid < 0 or tid in seen:
                continue
            seen.add(tid)
            t = self._tracks.setdefault(tid, _Track())
            t.frames.append(frame_index)
            t.keypoints.append(dets.keypoints[i])
            t.scores.append(dets.scores[i])
            t.boxes.append(dets.boxes[i])

    def stitch_fragments(self, max_gap: int, fps: float) -> list[tuple[int, int]]:
        """Join tracks that continue one another (see STITCH_*); the earlier id is kept.

        Greedy on the cheapest links, each track with at most one successor and one
        predecessor; returns the (kept id, joined id) pairs, in the order joined."""
        ids = sorted(self._tracks)
        ends = {i: _track_end(self._tracks[i].frames, self._tracks[i].boxes, True) for i in ids}
        starts = {i: _track_end(self._tracks[i].frames, self._tracks[i].boxes, False) for i in ids}
        by_start = sorted(ids, key=lambda i: starts[i].frame)
        first = [starts[i].frame for i in by_start]
        links = []
        for a in ids:  # only tracks starting within max_gap after a ended: a long video is fine
            lo = bisect.bisect_right(first, ends[a].frame)
            hi = bisect.bisect_right(first, ends[a].frame + max_gap)
            for b in by_start[lo:hi]:
                cost = stitch_cost(ends[a], starts[b], max_gap, fps)
                if cost is not None:
                    links.append((cost, a, b))
        nxt: dict[int, int] = {}
        prev: dict[int, int] = {}
        for _, a, b in sorted(links):
            if a not in nxt and b not in prev:
                nxt[a], prev[b] = b, a
        joined = []
        for head in ids:
            if head in prev:
                continue
            cur = head
            while cur in nxt:
                cur = nxt[cur]
                self._tracks[head].extend(self._tracks.pop(cur))
                joined.append((head, cur))
        return joined

    def _area_sum(self, tid: int) -> float:
        """Sum of the track's box areas (each in the boxes' dtype, as FrameDetections has it)."""
        boxes = self._tracks[tid].boxes
        return float(np.sum(box_areas(np.asarray(boxes)).astype(np.float64))) if boxes else 0.0

    def stats(self) -> TrackStats:
        ids = np.array(sorted(self._tracks), dtype=np.int64)
        counts = np.array([len(self._tracks[i].frames) for i in ids], dtype=np.int64)
        sums = np.array([self._area_sum(i) for i in ids], dtype=np.float64)
        return TrackStats(ids, counts, sums)

    def dense(self, track_ids: list[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(F, P, 17, 2) keypoints and (F, P, 17) scores for the given tracks, NaN elsewhere."""
        ids = [int(i) for i in track_ids]
        f = self.num_frames
        kp = np.full((f, len(ids), NUM_COCO_JOINTS, 2), np.nan, dtype=np.float32)
        sc = np.full((f, len(ids), NUM_COCO_JOINTS), np.nan, dtype=np.float32)
        for p, tid in enumerate(ids):
            t = self._tracks[tid]
            fr = np.asarray(t.frames, dtype=np.int64)
            kp[fr, p] = np.stack(t.keypoints)
            sc[fr, p] = np.stack(t.scores)
        return kp, sc


def stats_from_dense(keypoints: np.ndarray, track_ids: np.ndarray) -> TrackStats:
    """Track summary from dense (F, P, J, 2) keypoints: area = the keypoints' bounding box."""
    kp = np.asarray(keypoints, dtype=np.float64)
    ok = np.isfinite(kp).all(-1, keepdims=True)  # (F, P, J, 1)
    present = ok[..., 0].any(-1)  # (F, P)
    lo = np.where(ok, kp, np.inf).min(axis=2, initial=np.inf)
    hi = np.where(ok, kp, -np.inf).max(axis=2, initial=-np.inf)
    wh = np.where(present[..., None], hi - lo, 0.0)
    area = wh[..., 0] * wh[..., 1]
    return TrackStats(
        np.asarray(track_ids, dtype=np.int64), present.sum(0).astype(np.int64), area.sum(0)
    )


def select_tracks(stats: TrackStats, person: str | int, min_track_frames: int) -> list[int]:
    """Track ids to lift, best first (ordered by summed area, i.e. the `main` score).

    main: largest box area summed over the frames a track appears in (size x duration), so a
    small bystander visible throughout loses to the performer; largest: largest mean area;
    longest: most frames; all: every track with >= min_track_frames frames (if none is that
    long, the main track alone); an int: that track id.
    """
    person = parse_person(person)
    ids, counts, sums = stats.track_ids, stats.frame_counts, stats.area_sums
    if ids.size == 0:
        raise HGMambaError(
            "no person was detected: try a lower --conf or a larger --detector-imgsz"
        )
    by_main = np.lexsort((ids, -counts, -sums))  # ties: more frames, then lower id
    if person == "main":
        return [int(ids[by_main[0]])]
    if person == "largest":
        return [int(ids[np.lexsort((ids, -counts, -stats.mean_areas))[0]])]
    if person == "longest":
        return [int(ids[np.lexsort((ids, -sums, -counts))[0]])]
    if person == "all":
        keep = [int(ids[i]) for i in by_main if counts[i] >= min_track_frames]
        return keep or [int(ids[by_main[0]])]
    if person not in set(ids.tolist()):
        shown = ", ".join(str(int(i)) for i in ids[by_main][:20])
        raise HGMambaError(f"--person {person}: no such track id; tracks found: {shown}")
    return [int(person)]
