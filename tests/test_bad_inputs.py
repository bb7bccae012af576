"""`hgmamba lift` on bad (and awkward but valid) input, run as a user would: a subprocess.

Errors must be one line on stderr, exit code != 0, no traceback, and nothing (not even a
temporary file) left in the output folder. Awkward-but-valid input (a portrait video, a clip
shorter than the lifter's window, a person who leaves mid-clip) must simply work.

The lifter checkpoints here are untrained models saved with the model's own save function:
these tests check the plumbing, not accuracy.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hgmamba_core.model import build_model
from hgmamba_core.model.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "assets" / "demo" / "vtest_10s.mp4"
FAST = ("--detector-imgsz", "320")


def run_cli(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hgmamba_cli.app", "lift", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=REPO,
    )  # fmt: skip


# What a first run announces on stderr before any work that takes a while (an empty export
# cache, as in CI's fresh set-up): progress, not part of an error.
PROGRESS = ("exporting the detector to ",)


def assert_one_line_error(r: subprocess.CompletedProcess, *words: str) -> str:
    assert r.returncode != 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith(PROGRESS)]
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w.lower() in lines[0].lower(), lines[0]
    return lines[0]


def assert_nothing_left(out: Path) -> None:
    left = sorted(p.relative_to(out) for p in out.rglob("*")) if out.exists() else []
    assert left == [], left


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        vw.write(f)
    vw.release()
    return path


def count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


# A hand-made H36M-17 standing pose (pixels, y down) facing the camera, ~550 px tall.
_TEMPLATE = np.array(
    [[500, 500], [470, 500], [470, 650], [470, 800], [530, 500], [530, 650], [530, 800],
     [500, 420], [500, 340], [500, 300], [500, 250], [550, 340], [570, 420], [580, 500],
     [450, 340], [430, 420], [420, 500]], dtype=np.float32,
)  # fmt: skip


def walker(n: int, shift: float = 0.0) -> np.ndarray:
    """(n, 17, 3) pixels + confidence of a pose swaying its limbs and drifting right."""
    t = np.arange(n, dtype=np.float32)[:, None]
    kp = np.repeat(_TEMPLATE[None], n, axis=0).copy()
    kp[..., 0] += shift + 0.5 * t
    swing = 25.0 * np.sin(t / 4.0)
    kp[:, [2, 3, 12, 13], 0] += swing
    kp[:, [5, 6, 15, 16], 0] -= swing
    return np.concatenate([kp, np.full((n, 17, 1), 0.9, np.float32)], axis=-1)


def save_keypoints(path: Path, kp: np.ndarray, fps: float = 25.0) -> Path:
    np.savez(path, keypoints=kp, fps=np.float64(fps), size=np.array([1000, 1000]), layout="h36m")
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad_inputs")


@pytest.fixture(scope="module")
def xs_ckpt(untrained_xs_ckpt: Path) -> Path:
    return untrained_xs_ckpt


@pytest.fixture(scope="module")
def tiny_ckpt(work: Path) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(work / "tiny_untrained.pt", build_model("tiny"), meta={"trained": False})


@pytest.fixture(scope="module")
def bus_frames() -> list[np.ndarray]:
    import ultralytics

    img = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg"))
    assert img is not None and img.shape[0] > img.shape[1]  # portrait, 810 x 1080
    return [np.roll(img, 2 * i, axis=1) for i in range(8)]


# --------------------------------------------------------------------------- video files


def test_missing_file(work, xs_ckpt):
    out = work / "o_missing"
    r = run_cli(work / "nope.mp4", "--checkpoint", xs_ckpt, "--out", out)
    assert_one_line_error(r, "not found")
    assert_nothing_left(out)


def test_text_file_named_mp4(work, xs_ckpt):
    bad = work / "notes.mp4"
    bad.write_text("this is not a video\n" * 50)
    out = work / "o_text"
    r = run_cli(bad, "--checkpoint", xs_ckpt, "--out", out, *FAST)
    assert_one_line_error(r, "notes.mp4")
    assert_nothing_left(out)


def test_zero_byte_file(work, xs_ckpt):
    bad = work / "empty.mp4"
    bad.write_bytes(b"")
    out = work / "o_empty"
    r = run_cli(bad, "--checkpoint", xs_ckpt, "--out", out)
    assert_one_line_error(r, "empty")
    assert_nothing_left(out)


def test_truncated_video(work, xs_ckpt):
    data = DEMO.read_bytes()
    cut = work / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    out = work / "o_cut"
    r = run_cli(cut, "--checkpoint", xs_ckpt, "--out", out, "--no-render", *FAST)
    assert_one_line_error(r, "cut.mp4")
    assert_nothing_left(out)


def test_bad_rotate_fails_before_any_work(work, xs_ckpt):
    out = work / "o_rotate"
    r = run_cli(DEMO, "--checkpoint", xs_ckpt, "--out", out, "--rotate", "45")
    assert_one_line_error(r, "--rotate must be 0, 90, 180 or 270")
    assert_nothing_left(out)


def test_video_with_no_person(work, xs_ckpt):
    blank = write_video(work / "blank.mp4", [np.full((240, 320, 3), 128, np.uint8)] * 12)
    out = work / "o_blank"
    r = run_cli(blank, "--checkpoint", xs_ckpt, "--out", out, "--no-render", *FAST)
    assert_one_line_error(r, "no person")
    assert_nothing_left(out)


def test_portrait_video_keeps_its_aspect_and_renders_every_frame(work, xs_ckpt, bus_frames):
    """Also a clip shorter than T (8 < 27 frames): padded, lifted, rendered frame for frame."""
    video = write_video(work / "portrait.mp4", bus_frames)
    out = work / "o_portrait"
    r = run_cli(video, "--checkpoint", xs_ckpt, "--out", out, "--person", "all", *FAST)
    assert r.returncode == 0, r.stderr
    res = out / "portrait"
    with np.load(res / "pose2d.npz") as z:
        assert tuple(z["size"]) == (810, 1080)
        kp = z["keypoints"]
        assert kp.shape[0] == 8 and kp.shape[1] >= 1
        ok = np.isfinite(kp).all(-1)
        assert ok.any()
        # pixels of the portrait frame, not squashed into a landscape one
        assert np.all(kp[ok][:, 0] < 810) and kp[ok][:, 1].max() > 810
    pose3d = np.load(res / "pose3d.npy")
    assert pose3d.shape == (8, kp.shape[1], 17, 3)
    assert count_frames(res / "portrait_3d.mp4") == 8
    assert not [p for p in res.iterdir() if p.name.startswith(".")]


# --------------------------------------------------------------------------- keypoint files


def test_clip_shorter_than_T(work, xs_ckpt):
    kp = save_keypoints(work / "short.npz", walker(5))
    out = work / "o_short"
    r = run_cli("--keypoints", kp, "--checkpoint", xs_ckpt, "--out", out, "--no-render")
    assert r.returncode == 0, r.stderr
    pose3d = np.load(out / "short" / "pose3d.npy")
    assert pose3d.shape == (5, 1, 17, 3) and np.isfinite(pose3d).all()


def test_person_leaving_mid_clip(work, xs_ckpt):
    """Confidence 0 marks 'absent' in keypoint files; a 40-frame absence splits the track."""
    kp = walker(120)
    kp[40:80, :, 2] = 0.0
    f = save_keypoints(work / "leaves.npz", kp)
    out = work / "o_leaves"
    r = run_cli("--keypoints", f, "--checkpoint", xs_ckpt, "--out", out, "--no-render")
    assert r.returncode == 0, r.stderr
    pose3d = np.load(out / "leaves" / "pose3d.npy")
    assert pose3d.shape == (120, 1, 17, 3)
    assert np.isnan(pose3d[40:80]).all()
    assert np.isfinite(pose3d[:40]).all() and np.isfinite(pose3d[80:]).all()
    with np.load(out / "leaves" / "pose2d.npz") as z:
        assert np.isnan(z["keypoints"][40:80]).all()


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_inf_in_keypoint_file(work, xs_ckpt, value):
    kp = walker(30)
    kp[10, 3, 0] = value
    f = save_keypoints(work / f"bad_{value}.npz", kp)
    out = work / f"o_bad_{value}"
    r = run_cli("--keypoints", f, "--checkpoint", xs_ckpt, "--out", out, "--no-render")
    assert_one_line_error(r, "nan/inf")
    assert_nothing_left(out)


def test_keypoint_file_with_wrong_shape(work, xs_ckpt):
    f = work / "shape.npz"
    np.savez(f, keypoints=np.zeros((30, 15, 2), np.float32))
    out = work / "o_shape"
    r = run_cli("--keypoints", f, "--checkpoint", xs_ckpt, "--out", out, "--no-render")
    assert_one_line_error(r, "shape")
    assert_nothing_left(out)


# --------------------------------------------------------------------------- lifter choice


def test_unknown_variant(work):
    out = work / "o_variant"
    r = run_cli(DEMO, "--variant", "xxl", "--out", out)
    assert_one_line_error(r, "xxl")
    assert_nothing_left(out)


def test_checkpoint_for_another_variant(work, xs_ckpt):
    kp = save_keypoints(work / "walk.npz", walker(30))
    out = work / "o_other"
    r = run_cli("--keypoints", kp, "--variant", "s", "--checkpoint", xs_ckpt, "--out", out)
    assert_one_line_error(r, "xs", "s")
    assert_nothing_left(out)


def test_corrupt_and_old_checkpoints(work):
    kp = save_keypoints(work / "walk2.npz", walker(30))
    garbage = work / "garbage.pt"
    garbage.write_bytes(os.urandom(4096))
    old = work / "old_state_dict.pt"  # a bare state_dict, as older code would have saved
    torch.save(build_model("tiny").state_dict(), old)
    for ckpt in (garbage, old):
        out = work / f"o_{ckpt.stem}"
        r = run_cli("--keypoints", kp, "--checkpoint", ckpt, "--out", out, "--no-render")
        assert_one_line_error(r, ckpt.name)
        assert_nothing_left(out)


class _Exploit:
    """Unpickling this runs code: torch.load(weights_only=True) must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_checkpoint_with_pickled_code_is_refused(work):
    marker = work / "exploit_ran"
    evil = work / "evil.pt"
    torch.save({"format": "hgmamba-lifter", "payload": _Exploit(marker)}, evil)
    kp = save_keypoints(work / "walk3.npz", walker(30))
    out = work / "o_evil"
    r = run_cli("--keypoints", kp, "--checkpoint", evil, "--out", out, "--no-render")
    assert_one_line_error(r, "evil.pt")
    assert not marker.exists()
    assert_nothing_left(out)


def test_no_shipped_weights_says_how_to_train(work, tmp_path):
    env = dict(os.environ, HGMAMBA_ASSETS=str(tmp_path))  # an assets folder with no weights
    kp = save_keypoints(work / "walk4.npz", walker(30))
    r = subprocess.run(
        [sys.executable, "-m", "hgmamba_cli.app", "lift", "--keypoints", str(kp),
         "--out", str(work / "o_noweights"), "--variant", "s"],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO,
    )  # fmt: skip
    assert_one_line_error(r, "no trained weights", "hgmamba train", "--checkpoint")


# --------------------------------------------------------------------------- output folder


def test_output_below_a_regular_file(work, xs_ckpt):
    blocker = work / "file.txt"
    blocker.write_text("I am a file")
    kp = save_keypoints(work / "walk5.npz", walker(30))
    r = run_cli("--keypoints", kp, "--checkpoint", xs_ckpt, "--out", blocker / "sub")
    assert_one_line_error(r, "cannot write")
    assert blocker.read_text() == "I am a file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_output_folder(work, xs_ckpt, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    kp = save_keypoints(work / "walk6.npz", walker(30))
    try:
        r = run_cli("--keypoints", kp, "--checkpoint", xs_ckpt, "--out", ro)
        assert_one_line_error(r, "cannot write")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


def test_ctrl_c_leaves_no_partial_files(work, tiny_ckpt):
    """SIGINT while the video is being written: exit 130, the output folder left empty."""
    kp = save_keypoints(work / "long.npz", walker(1500))
    out = work / "o_ctrlc"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hgmamba_cli.app", "lift", "--keypoints", str(kp),
         "--checkpoint", str(tiny_ckpt), "--out", str(out), "--no-flip"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    res = out / "long"
    deadline = time.monotonic() + 240
    writing = False
    while time.monotonic() < deadline and proc.poll() is None:
        partial = [p for p in res.rglob("*.mp4")] if res.exists() else []
        if any(p.stat().st_size > 0 for p in partial if p.exists()):
            writing = True
            break
        time.sleep(0.2)
    assert writing, "the render never started"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) <= 1, err
    assert_nothing_left(out)
