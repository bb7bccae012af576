"""Streaming video reader: real clips, a portrait clip, and one-line errors for bad files."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from video_files import write_av

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


def _marked_landscape(path: Path) -> Path:
    """3 frames of 208x120 with a white box centred at (25, 20): where it lands shows the turn."""
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (208, 120))
    for _ in range(3):
        img = np.full((120, 208, 3), 40, np.uint8)
        cv2.rectangle(img, (10, 10), (40, 30), (255, 255, 255), -1)
        vw.write(img)
    vw.release()
    return path


@pytest.mark.parametrize(
    ("degrees", "size", "marker"),
    [(90, (120, 208), (99, 25)), (180, (208, 120), (182, 99)), (270, (120, 208), (20, 182))],
)
def test_rotation_metadata_is_honoured(tmp_path, degrees, size, marker):
    """A landscape clip tagged as rotated (like a phone's portrait video) comes out upright."""
    src = _marked_landscape(tmp_path / "landscape.mp4")
    dst = tmp_path / f"rot{degrees}.mp4"
    _rotated_copy(src, dst, degrees)
    with VideoReader(dst) as r:
        assert r.info.rotation == degrees and r.info.size == size
        frames = list(r)
    assert len(frames) == 3
    ys, xs = np.nonzero(frames[0][..., 0] > 150)
    assert frames[0].shape[:2] == (size[1], size[0])
    assert abs(xs.mean() - marker[0]) < 2 and abs(ys.mean() - marker[1]) < 2


def test_missing_zero_byte_empty_folder(tmp_path):
    with pytest.raises(HGMambaError, match="not found"):
        VideoReader(tmp_path / "nope.mp4")
    (tmp_path / "zero.mp4").write_bytes(b"")
    with pytest.raises(HGMambaError, match="empty"):
        VideoReader(tmp_path / "zero.mp4")
    with pytest.raises(HGMambaError, match="folder without images"):
        VideoReader(tmp_path)


def _bad_files(tmp: Path) -> dict[str, Path]:
    data = DEMO.read_bytes()
    files = {
        "text": b"this is a text file, not a video\n" * 20,
        "random": np.random.default_rng(0).bytes(50_000),
        "truncated": data[: len(data) // 2],  # mp4 index (moov, at the end) lost
    }
    out = {}
    for name, content in files.items():
        p = tmp / f"{name}.mp4"
        p.write_bytes(content)
        out[name] = p
    return out


@pytest.mark.parametrize("kind", ["text", "random", "truncated"])
def test_files_where_no_frame_decodes_give_one_line_errors(tmp_path, kind):
    path = _bad_files(tmp_path)[kind]
    with pytest.raises(HGMambaError) as e:
        for _ in iter_frames(path):
            pass
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    assert "cannot decode" in msg


def test_garbage_mid_stream_decodes_the_rest_with_a_note(tmp_path):
    """Players play such a file (with glitches): we keep every frame that decodes."""
    corrupt = bytearray(DEMO.read_bytes())
    corrupt[50_000:400_000] = np.random.default_rng(1).bytes(350_000)
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(bytes(corrupt))
    with VideoReader(path) as r:
        n = sum(1 for _ in r)
        note = r.mismatch_note()
    assert 10 < n < 100 and r.info.frames_in_header == 100
    assert note is not None and f"{n} decoded" in note and "100" in note


def _marker_frames(n: int, w: int = 160, h: int = 120) -> list[np.ndarray]:
    out = []
    for i in range(n):
        img = np.full((h, w, 3), 30, np.uint8)
        cv2.rectangle(img, (5 + 3 * i, 20), (25 + 3 * i, 60), (255, 255, 255), -1)
        out.append(img)
    return out


def test_header_claims_more_frames_than_decode(tmp_path):
    """moov first (+faststart), the tail cut off: the header says 40, fewer decode."""
    full = write_av(tmp_path / "full.mp4", _marker_frames(40), faststart=True)
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with VideoReader(cut) as r:
        n = sum(1 for _ in r)
        assert r.info.frames_in_header == 40 and 0 < n < 40
        assert r.mismatch_note() == (
            f"cut.mp4: the container says 40 frames, {n} decoded; lifted the {n} that decode"
        )
    with VideoReader(full) as r:
        assert sum(1 for _ in r) == 40 and r.mismatch_note() is None


def test_variable_frame_rate_keeps_timestamps_and_mean_rate(tmp_path):
    times = [0.0, 0.033, 0.066, 0.150, 0.183, 0.300, 0.333, 0.366, 0.500, 0.533]
    path = write_av(tmp_path / "vfr.mp4", _marker_frames(len(times)), times_s=times)
    with VideoReader(path) as r:
        frames = list(r)
        assert len(frames) == len(times)
        np.testing.assert_allclose(r.timestamps, times, atol=1.5e-3)
        assert r.variable_frame_rate
        assert r.mean_fps == pytest.approx((len(times) - 1) / times[-1], rel=0.01)
    const = write_av(tmp_path / "cfr.mp4", _marker_frames(10), rate=25)
    with VideoReader(const) as r:
        list(r)
        assert not r.variable_frame_rate and r.mean_fps == pytest.approx(25.0, rel=1e-3)


def test_audio_only_container_is_a_one_line_error(tmp_path):
    import av

    path = tmp_path / "song.m4a"
    with av.open(str(path), mode="w", format="mp4") as c:
        s = c.add_stream("aac", rate=16000)
        t = np.arange(16000) / 16000.0
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        f = av.AudioFrame.from_ndarray(tone, format="flt", layout="mono")
        f.sample_rate = 16000
        for p in s.encode(f):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    with pytest.raises(HGMambaError, match=r"no video stream \(audio only\)"):
        VideoReader(path)


def test_odd_frame_size_is_kept(tmp_path):
    frames = [np.full((121, 161, 3), 90, np.uint8)] * 4  # 4:4:4 H.264 allows odd sizes
    path = write_av(tmp_path / "odd.mp4", frames, pix_fmt="yuv444p")
    with VideoReader(path) as r:
        got = list(r)
    assert r.info.size == (161, 121) and len(got) == 4 and got[0].shape == (121, 161, 3)


def test_image_file_is_a_one_frame_clip(tmp_path):
    img = _marker_frames(1)[0]
    path = tmp_path / "still.jpg"
    cv2.imwrite(str(path), img)
    with VideoReader(path) as r:
        got = list(r)
        assert r.info.kind == "image" and r.info.size == (160, 120) and len(got) == 1
        assert r.mismatch_note() is None


def test_image_folder_in_natural_order_with_given_fps(tmp_path):
    frames = _marker_frames(12)
    d = tmp_path / "frames"
    d.mkdir()
    for i, img in enumerate(frames):
        cv2.imwrite(str(d / f"f{i}.png"), img)  # f10 must come after f9, not after f1
    (d / "notes.txt").write_text("not an image")
    with VideoReader(d, fps=30) as r:
        got = list(r)
        assert r.info.kind == "images" and len(got) == 12 and r.mean_fps == pytest.approx(30)
    for i, img in enumerate(got):
        np.testing.assert_array_equal(img, frames[i])
    cv2.imwrite(str(d / "f12.png"), np.zeros((50, 50, 3), np.uint8))
    with pytest.raises(HGMambaError, match="f12.png is 50x50 but the first frame"):
        for _ in VideoReader(d, fps=30):
            pass


@pytest.mark.parametrize(("turn", "marker"), [(90, (99, 25)), (180, (182, 99)), (270, (20, 182))])
def test_rotate_turns_frames_after_the_tag(tmp_path, turn, marker):
    """--rotate: a clip that plays sideways (no tag) turned by hand; sizes follow; bad turns fail."""
    src = _marked_landscape(tmp_path / "landscape.mp4")
    size = (120, 208) if turn != 180 else (208, 120)
    with VideoReader(src, rotate=turn) as r:
        assert r.info.rotation == turn and r.info.size == size and r.rotate == turn
        frames = list(r)
    assert len(frames) == 3 and frames[0].shape[:2] == (size[1], size[0])
    ys, xs = np.nonzero(frames[0][..., 0] > 150)
    assert abs(xs.mean() - marker[0]) < 2 and abs(ys.mean() - marker[1]) < 2
    # on top of a tag: tagged 90 plus --rotate 90 is the 180 turn
    tagged = tmp_path / "rot90.mp4"
    _rotated_copy(src, tagged, 90)
    with VideoReader(tagged, rotate=90) as r:
        assert r.info.rotation == 180 and r.info.size == (208, 120)
    for bad in (45, 1.5, -30):
        with pytest.raises(HGMambaError, match="--rotate must be 0, 90, 180 or 270"):
            VideoReader(src, rotate=bad)
    assert VideoReader(src, rotate=-90).rotate == 270
