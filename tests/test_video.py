"""Streaming video reader: real clips, a portrait clip, and one-line errors for bad files."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from hgmamba_core.errors import HGMambaError
from hgmamba_core.poses import denormalize_screen, normalize_screen
from hgmamba_core.video import VideoReader, iter_frames, probe_video

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "assets" / "demo" / "vtest_10s.mp4"


def test_demo_clip_streams_all_frames():
    info = probe_video(DEMO)
    assert (info.width, info.height, info.fps, info.frame_count) == (768, 576, 10.0, 100)
    assert info.rotation == 0
    n = 0
    for frame in iter_frames(DEMO):
        assert frame.shape == (576, 768, 3) and frame.dtype == np.uint8
        n += 1
    assert n == 100


def test_reader_yields_lazily_and_closes():
    with VideoReader(DEMO) as r:
        it = iter(r)
        first = next(it)
        assert r.frames_read == 1 and first.shape == (576, 768, 3)
    with pytest.raises(HGMambaError, match="closed"):
        next(iter(r))


def _write_portrait(path: Path, w: int = 120, h: int = 208, frames: int = 8) -> None:
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (w, h))
    assert vw.isOpened()
    for i in range(frames):
        img = np.full((h, w, 3), 40, np.uint8)
        cv2.rectangle(img, (10, 10 + i), (40, 50 + i), (255, 255, 255), -1)  # near the top-left
        vw.write(img)
    vw.release()


def test_portrait_video_keeps_orientation_and_aspect(tmp_path):
    path = tmp_path / "portrait.mp4"
    _write_portrait(path)
    info = probe_video(path)
    assert info.size == (120, 208) and info.fps == 15.0
    frames = list(iter_frames(path))
    assert len(frames) == 8
    for i, f in enumerate(frames):
        assert f.shape == (208, 120, 3)
        ys, xs = np.nonzero(f[..., 0] > 150)
        assert abs(ys.mean() - (30 + i)) < 2 and abs(xs.mean() - 25) < 2  # still top-left
    # normalization: x spans [-1, 1], y spans [-h/w, h/w], a square stays a square
    w, h = info.size
    pix = np.array([[0, 0], [w, h], [w / 2, h / 2], [10, 10], [30, 30]], np.float32)
    norm = normalize_screen(pix, w, h)
    np.testing.assert_allclose(norm[0], (-1, -h / w), atol=1e-6)
    np.testing.assert_allclose(norm[1], (1, h / w), atol=1e-6)
    np.testing.assert_allclose(norm[2], (0, 0), atol=1e-6)
    d = norm[4] - norm[3]
    assert abs(d[0] - d[1]) < 1e-6  # same scale on both axes: portrait is not squashed
    np.testing.assert_allclose(denormalize_screen(norm, w, h), pix, atol=1e-4)


def _rotated_copy(src: Path, dst: Path, degrees: int) -> None:
    """Copy an mp4 setting the track's display matrix (tkhd) the way phones store rotation."""
    data = bytearray(src.read_bytes())
    i = data.find(b"tkhd")
    assert i > 0 and data[i + 4] == 0  # version-0 box: the matrix sits 48 bytes after its start
    off = i - 4 + 48
    one, w = 1 << 16, 1 << 30
    matrix = {
        90: (0, one, 0, -one, 0, 0, 0, 0, w),
        180: (-one, 0, 0, 0, -one, 0, 0, 0, w),
        270: (0, -one, 0, one, 0, 0, 0, 0, w),
    }[degrees]
    data[off : off + 36] = struct.pack(">9i", *matrix)
    dst.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("degrees", "size", "marker"),
    [(90, (120, 208), (99, 25)), (180, (208, 120), (182, 99)), (270, (120, 208), (20, 182))],
)
def test_rotation_metadata_is_honoured(tmp_path, degrees, size, marker):
    """A landscape clip tagged as rotated (like a phone's portrait video) comes out upright."""
    src = tmp_path / "landscape.mp4"
    vw = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (208, 120))
    for _ in range(3):
        img = np.full((120, 208, 3), 40, np.uint8)
        cv2.rectangle(img, (10, 10), (40, 30), (255, 255, 255), -1)  # centre (25, 20)
        vw.write(img)
    vw.release()
    dst = tmp_path / f"rot{degrees}.mp4"
    _rotated_copy(src, dst, degrees)
    with VideoReader(dst) as r:
        assert r.info.rotation == degrees and r.info.size == size
        frames = list(r)
    assert len(frames) == 3
    ys, xs = np.nonzero(frames[0][..., 0] > 150)
    assert frames[0].shape[:2] == (size[1], size[0])
    assert abs(xs.mean() - marker[0]) < 2 and abs(ys.mean() - marker[1]) < 2


def test_missing_zero_byte_folder(tmp_path):
    with pytest.raises(HGMambaError, match="not found"):
        VideoReader(tmp_path / "nope.mp4")
    (tmp_path / "zero.mp4").write_bytes(b"")
    with pytest.raises(HGMambaError, match="empty"):
        VideoReader(tmp_path / "zero.mp4")
    with pytest.raises(HGMambaError, match="folder"):
        VideoReader(tmp_path)


def _bad_files(tmp: Path) -> dict[str, Path]:
    data = DEMO.read_bytes()
    files = {
        "text": b"this is a text file, not a video\n" * 20,
        "random": np.random.default_rng(0).bytes(50_000),
        "truncated": data[: len(data) // 2],  # mp4 index (moov) lost
    }
    corrupt = bytearray(data)
    corrupt[50_000:400_000] = np.random.default_rng(1).bytes(350_000)  # stream garbage mid-file
    files["corrupt"] = bytes(corrupt)
    out = {}
    for name, content in files.items():
        p = tmp / f"{name}.mp4"
        p.write_bytes(content)
        out[name] = p
    return out


@pytest.mark.parametrize("kind", ["text", "random", "truncated", "corrupt"])
def test_bad_videos_give_one_line_errors(tmp_path, kind):
    path = _bad_files(tmp_path)[kind]
    with pytest.raises(HGMambaError) as e:
        for _ in iter_frames(path):
            pass
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    assert any(w in msg for w in ("cannot decode", "truncated or corrupt"))
