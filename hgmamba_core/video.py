"""Streaming frame sources: a video file, one image, or a folder of numbered images.

Video files are decoded with PyAV (the FFmpeg that its wheels bundle), one frame at a time, so
long videos run in bounded memory. What real files do is not an error here:
- the container's frame count is only a claim: cut, streamed or re-muxed files often decode
  fewer (or more) frames; we yield what decodes and record both numbers;
- variable frame rate: every frame's presentation time is kept (`timestamps`, seconds from the
  first frame) and `mean_fps` is the rate they imply;
- rotation metadata (phone portrait videos): frames are turned upright, and sizes are those of
  the frames as yielded, so pixel coordinates downstream refer to what a viewer sees; `rotate`
  turns them further (a file whose tag was lost, so it plays sideways);
- packets that fail to decode mid-stream are skipped, as players do.
Only an input from which no frame decodes is an error (one line, naming the file).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from hgmamba_core.errors import HGMambaError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_IMAGE_FPS = 30.0  # frames of an image folder, unless --fps says otherwise
# Frame intervals deviating more than this from their median mark a variable-rate stream.
_VFR_TOLERANCE = 0.05
_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


@dataclass(frozen=True)
class VideoInfo:
    """What a frame source holds, as yielded (width/height after rotation).

    kind: "video", "image" (one file, a one-frame clip) or "images" (a folder of numbered
    images); fps: the stream's stated rate (0 when unknown); frame_count: the container's
    claim, else an estimate from its duration, 0 when unknown; rotation: degrees clockwise
    applied to make the frames upright (the file's tag plus the caller's `rotate`).
    """

    path: str
    fps: float
    width: int
    height: int
    frame_count: int
    rotation: int
    kind: str = "video"
    frames_in_header: int | None = None  # the container's own frame count, None if absent

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)


def natural_key(name: str) -> list:
    """'frame10.png' sorts after 'frame9.png': digit runs compare as numbers."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def image_files(folder: Path) -> list[Path]:
    """The images of a folder in frame order (natural sort); hidden files are skipped."""
    files = [p for p in folder.iterdir() if p.is_file() and is_image_file(p) and p.name[0] != "."]
    return sorted(files, key=lambda p: natural_key(p.name))


ROTATIONS = (0, 90, 180, 270)


def check_rotate(rotate: int) -> int:
    """A clockwise turn in degrees, one of ROTATIONS (-90 is 270)."""
    turn = int(rotate) % 360
    if turn not in ROTATIONS or int(rotate) != rotate:
        raise HGMambaError(f"--rotate must be 0, 90, 180 or 270 (degrees clockwise), got {rotate}")
    return turn


def _check_path(path: Path) -> None:
    if not path.exists():
        raise HGMambaError(f"video not found: {path}")
    if path.is_file() and path.stat().st_size == 0:
        raise HGMambaError(f"video file is empty (0 bytes): {path}")


def _read_image(path: Path) -> np.ndarray:
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise HGMambaError(f"cannot read image {path}: corrupt or not an image")
    return img


def _is_vfr(timestamps: list[float]) -> bool:
    if len(timestamps) < 3:
        return False
    d = np.diff(np.asarray(timestamps, dtype=np.float64))
    med = float(np.median(d))
    return med > 0 and bool(np.any(np.abs(d - med) > _VFR_TOLERANCE * med))


class VideoReader:
    """Iterate over the BGR frames (H, W, 3) uint8 of a video, an image or an image folder.

    After (or during) iteration: `frames_read`, `timestamps` (seconds from the first frame),
    `mean_fps` (the rate the timestamps imply; the stated rate before two frames are read),
    `variable_frame_rate`, `skipped_packets`. `fps` overrides the rate for every kind (needed
    for image folders, which have none); `rotate` (0, 90, 180, 270) turns every frame that many
    degrees clockwise after the file's own rotation tag. A header/decode frame-count mismatch is
    never an error (see mismatch_note). Use as a context manager or close().
    """

    def __init__(self, path: str | os.PathLike, fps: float | None = None, rotate: int = 0) -> None:
        self.path = Path(path)
        self.rotate = check_rotate(rotate)
        self.frames_read = 0
        self.timestamps: list[float] = []
        self.skipped_packets = 0
        self._fps_override = float(fps) if fps else None
        if self._fps_override is not None and not (0 < self._fps_override <= 1000):
            raise HGMambaError(f"--fps must be in (0, 1000], got {fps:g}")
        self._container = None
        self._frames: Iterator[np.ndarray] | None = None
        self._first: np.ndarray | None = None
        _check_path(self.path)
        if self.path.is_dir():
            self._open_folder()
        elif is_image_file(self.path):
            self._open_image()
        else:
            self._open_video()
        if self.rotate:
            i = self.info
            w, h = (i.height, i.width) if self.rotate in (90, 270) else (i.width, i.height)
            rot = (i.rotation + self.rotate) % 360
            self.info = replace(i, width=w, height=h, rotation=rot)

    # ------------------------------------------------------------------ sources
    def _open_folder(self) -> None:
        files = image_files(self.path)
        if not files:
            raise HGMambaError(
                f"{self.path} is a folder without images ({', '.join(IMAGE_SUFFIXES)}): "
                "pass a video file or a folder of numbered frames"
            )
        self._files = files
        self._first = _read_image(files[0])
        h, w = self._first.shape[:2]
        self._frames = self._folder_frames(w, h)
        fps = self._fps_override or 0.0
        self.info = VideoInfo(str(self.path), fps, w, h, len(files), 0, "images", len(files))

    def _folder_frames(self, w: int, h: int) -> Iterator[np.ndarray]:
        for f in self._files[1:]:
            img = _read_image(f)
            if img.shape[:2] != (h, w):
                raise HGMambaError(
                    f"{f} is {img.shape[1]}x{img.shape[0]} but the first frame "
                    f"{self._files[0].name} is {w}x{h}: all frames of a folder must be one size"
                )
            yield img

    def _open_image(self) -> None:
        self._first = _read_image(self.path)
        self._frames = iter(())
        h, w = self._first.shape[:2]
        fps = self._fps_override or 0.0
        self.info = VideoInfo(str(self.path), fps, w, h, 1, 0, "image", 1)

    def _open_video(self) -> None:
        import av  # noqa: PLC0415 - a declared dependency; imported where decoding happens

        try:
            self._container = av.open(str(self.path), mode="r")
        except (av.FFmpegError, UnicodeDecodeError, ValueError) as e:
            raise HGMambaError(
                f"cannot decode {self.path}: not a video FFmpeg can read (corrupt, truncated, "
                f"or not a video file: {type(e).__name__})"
            ) from None
        c = self._container
        if not c.streams.video:
            kinds = sorted({s.type for s in c.streams})
            self.close()
            what = "audio only" if kinds == ["audio"] else f"streams: {', '.join(kinds) or 'none'}"
            raise HGMambaError(
                f"{self.path} has no video stream ({what}): pass a video file or an image folder"
            )
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        self._stream = stream
        self._frames = self._decode()
        self._first = next(self._frames, None)
        if self._first is None:
            self.close()
            raise HGMambaError(
                f"cannot decode any frame of {self.path}: corrupt, truncated or not a video; "
                "re-encode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4"
            )
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        if not np.isfinite(fps) or fps <= 0 or fps > 1000:
            fps = 0.0
        header = int(stream.frames or 0) or None
        count = header or 0
        if not count and stream.duration and stream.time_base and fps:
            count = int(round(float(stream.duration * stream.time_base) * fps))
        h, w = self._first.shape[:2]
        self.info = VideoInfo(
            str(self.path), self._fps_override or fps, int(w), int(h), count,
            self._rotation, "video", header,
        )  # fmt: skip

    def _decode(self) -> Iterator[np.ndarray]:
        """Frames in presentation order; bad packets are skipped, a broken demuxer ends it."""
        import av  # noqa: PLC0415

        self._rotation = 0
        t0: float | None = None
        stream = self._stream
        packets = self._container.demux(stream)  # type: ignore[union-attr]
        flushed = False
        while not flushed:
            try:
                decoded = next(packets).decode()
            except (StopIteration, av.FFmpegError) as e:
                if isinstance(e, av.InvalidDataError) and not isinstance(e, av.EOFError):
                    self.skipped_packets += 1  # a damaged packet: skip it, as players do
                    continue
                # the end, or the demuxer gave up mid-file (cut short): flush the decoder
                flushed = True
                try:
                    decoded = stream.codec_context.decode(None)
                except av.FFmpegError:
                    return
            for frame in decoded:
                if t0 is None:
                    self._rotation = int(-round(frame.rotation or 0)) % 360
                t = frame.time
                if t is not None:
                    t0 = t if t0 is None else t0
                    self._last_time = float(t - t0)
                else:
                    t0 = 0.0 if t0 is None else t0
                    self._last_time = None
                img = frame.to_ndarray(format="bgr24")
                rot = _ROTATE.get(self._rotation)
                yield cv2.rotate(img, rot) if rot is not None else img

    # ------------------------------------------------------------------ iteration
    def _next_time(self) -> float:
        """The presentation time of the frame just yielded (seconds from the first)."""
        n = len(self.timestamps)
        if self._fps_override is not None or self.info.kind != "video":
            return n / (self._fps_override or DEFAULT_IMAGE_FPS)
        t = getattr(self, "_last_time", None)
        if t is None or (self.timestamps and t <= self.timestamps[-1]):
            step = 1.0 / self.info.fps if self.info.fps > 0 else 1.0 / DEFAULT_IMAGE_FPS
            t = (self.timestamps[-1] + step) if self.timestamps else 0.0
        return float(t)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._frames is None:
            raise HGMambaError(f"video reader for {self.path} is closed")
        frame, self._first = self._first, None
        if frame is None:
            frame = next(self._frames, None)
        while frame is not None:
            self.timestamps.append(self._next_time())
            self.frames_read += 1
            yield cv2.rotate(frame, _ROTATE[self.rotate]) if self.rotate else frame
            if self._frames is None:
                return
            frame = next(self._frames, None)

    @property
    def mean_fps(self) -> float:
        """Frames per second implied by the timestamps (the stated rate until 2 frames)."""
        ts = self.timestamps
        if len(ts) >= 2 and ts[-1] > ts[0]:
            return (len(ts) - 1) / (ts[-1] - ts[0])
        return self.info.fps

    @property
    def variable_frame_rate(self) -> bool:
        return self._fps_override is None and _is_vfr(self.timestamps)

    def mismatch_note(self) -> str | None:
        """One line when the container's frame count disagrees with what decoded."""
        header = self.info.frames_in_header
        if self.info.kind != "video" or header is None or header == self.frames_read:
            return None
        return (
            f"{self.path.name}: the container says {header} frames, {self.frames_read} decoded; "
            f"lifted the {self.frames_read} that decode"
        )

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        self._frames = None
        self._first = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def probe_video(path: str | os.PathLike, fps: float | None = None, rotate: int = 0) -> VideoInfo:
    """fps, size (after rotation), frame count and rotation of a source, decoding one frame."""
    with VideoReader(path, fps=fps, rotate=rotate) as r:
        return r.info


def iter_frames(
    path: str | os.PathLike, fps: float | None = None, rotate: int = 0
) -> Iterator[np.ndarray]:
    """Yield the frames of a source one at a time (closes the file when done)."""
    with VideoReader(path, fps=fps, rotate=rotate) as r:
        yield from r
