"""`hgmamba lift` on files real users have, each made here: a header promising more frames than
decode, a variable frame rate, an odd frame size, an image, a folder of numbered images, and an
audio-only container. All but the last must simply lift; the lifter is untrained (plumbing)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_bad_inputs import FAST, assert_nothing_left, assert_one_line_error, count_frames, run_cli
from video_files import write_av


@pytest.fixture(scope="module")
def people() -> list[np.ndarray]:
    """Ultralytics' bus.jpg (people standing) at 404x540, shifted a little per frame."""
    import ultralytics

    img = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg"))
    assert img is not None
    img = cv2.resize(img, (404, 540))
    return [np.roll(img, i, axis=1) for i in range(30)]


def _metadata(res: Path) -> dict:
    return json.loads((res / "pose3d.json").read_text())["metadata"]


def test_header_frame_count_larger_than_decoded(tmp_path, untrained_xs_ckpt, people):
    full = write_av(tmp_path / "full.mp4", people, rate=25, faststart=True)
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.92)])  # the key frame is ~75 % of it
    out = tmp_path / "o_cut"
    r = run_cli(cut, "--checkpoint", untrained_xs_ckpt, "--out", out, "--person", "all", *FAST)
    assert r.returncode == 0, r.stderr
    res = out / "cut"
    meta = _metadata(res)
    n = meta["frames_decoded"]
    assert meta["frames_in_header"] == 30 and 0 < n < 30
    assert f"the container says 30 frames, {n} decoded" in " ".join(r.stdout.split())
    assert np.load(res / "pose3d.npy").shape[0] == n
    assert count_frames(res / "cut_3d.mp4") == n


def test_variable_frame_rate_times_reach_the_outputs(tmp_path, untrained_xs_ckpt, people):
    steps = np.where(np.arange(29) % 3 == 0, 0.08, 0.03)  # 30 frames, uneven intervals
    times = np.concatenate([[0.0], np.cumsum(steps)]).round(3)
    video = write_av(tmp_path / "vfr.mp4", people, times_s=times.tolist())
    out = tmp_path / "o_vfr"
    r = run_cli(video, "--checkpoint", untrained_xs_ckpt, "--out", out, "--no-render", *FAST)
    assert r.returncode == 0, r.stderr
    assert "variable frame rate" in r.stdout
    res = out / "vfr"
    meta = _metadata(res)
    assert meta["variable_frame_rate"] is True
    assert meta["fps"] == pytest.approx(29 / times[-1], rel=0.01)
    with np.load(res / "pose2d.npz") as z:
        np.testing.assert_allclose(z["timestamps"], times, atol=2e-3)
    frames = json.loads((res / "pose3d.json").read_text())["frames"]
    np.testing.assert_allclose([f["time_s"] for f in frames], times, atol=2e-3)
    bvh = (res / "pose3d.bvh").read_text()
    assert f"Frame Time: {1 / meta['fps']:.8f}" in bvh  # BVH plays at the mean rate


def test_odd_frame_size(tmp_path, untrained_xs_ckpt, people):
    frames = [f[:539, :403] for f in people[:10]]
    video = write_av(tmp_path / "odd.mp4", frames, pix_fmt="yuv444p")
    out = tmp_path / "o_odd"
    r = run_cli(video, "--checkpoint", untrained_xs_ckpt, "--out", out, "--person", "all", *FAST)
    assert r.returncode == 0, r.stderr
    with np.load(out / "odd" / "pose2d.npz") as z:
        assert tuple(z["size"]) == (403, 539)
    assert count_frames(out / "odd" / "odd_3d.mp4") == 10


def test_image_file_lifts_as_one_frame(tmp_path, untrained_xs_ckpt, people):
    img = tmp_path / "still.jpg"
    cv2.imwrite(str(img), people[0])
    out = tmp_path / "o_img"
    r = run_cli(img, "--checkpoint", untrained_xs_ckpt, "--out", out, "--person", "all", *FAST)
    assert r.returncode == 0, r.stderr
    pose3d = np.load(out / "still" / "pose3d.npy")
    assert pose3d.shape[0] == 1 and pose3d.shape[1] >= 1 and np.isfinite(pose3d).any()
    assert _metadata(out / "still")["input_kind"] == "image"
    assert count_frames(out / "still" / "still_3d.mp4") == 1


def test_folder_of_numbered_images(tmp_path, untrained_xs_ckpt, people):
    d = tmp_path / "frames"
    d.mkdir()
    for i, img in enumerate(people[:12]):
        cv2.imwrite(str(d / f"img_{i + 1}.png"), img)
    out = tmp_path / "o_frames"
    r = run_cli(
        d, "--fps", "30", "--checkpoint", untrained_xs_ckpt, "--out", out, "--no-render", *FAST
    )
    assert r.returncode == 0, r.stderr
    meta = _metadata(out / "frames")
    assert meta["fps"] == pytest.approx(30.0) and meta["input_kind"] == "images"
    assert meta["frames_decoded"] == 12
    assert np.load(out / "frames" / "pose3d.npy").shape[0] == 12


def test_audio_only_container(tmp_path, untrained_xs_ckpt):
    import av

    path = tmp_path / "voice.m4a"
    with av.open(str(path), mode="w", format="mp4") as c:
        s = c.add_stream("aac", rate=16000)
        tone = np.zeros((1, 16000), np.float32)
        f = av.AudioFrame.from_ndarray(tone, format="flt", layout="mono")
        f.sample_rate = 16000
        for p in [*s.encode(f), *s.encode(None)]:
            c.mux(p)
    out = tmp_path / "o_audio"
    r = run_cli(path, "--checkpoint", untrained_xs_ckpt, "--out", out)
    assert_one_line_error(r, "no video stream", "audio only")
    assert_nothing_left(out)


def test_empty_folder(tmp_path, untrained_xs_ckpt):
    d = tmp_path / "nothing"
    d.mkdir()
    out = tmp_path / "o_nothing"
    r = run_cli(d, "--checkpoint", untrained_xs_ckpt, "--out", out)
    assert_one_line_error(r, "folder without images")
    assert_nothing_left(out)
