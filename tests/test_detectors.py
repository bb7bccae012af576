"""YOLO-Pose front end on real images and video (no mocks): detection, remap, tracking, offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from detectors import Pose2DDetector, detect_video
from detectors.tracking import TrackStats, select_tracks
from detectors.yolo import YoloPoseDetector, resolve_weights
from hgmamba_core.errors import HGMambaError
from hgmamba_core.poses import Pose2DSequence
from hgmamba_core.skeleton import coco_to_h36m

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "assets" / "demo" / "vtest_10s.mp4"
SHIPPED = REPO / "assets" / "weights" / "yolo11n-pose.pt"


def _ultra_image(name: str) -> np.ndarray:
    import ultralytics

    img = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / name))
    assert img is not None, name
    return img


@pytest.fixture(scope="module")
def yolo320() -> YoloPoseDetector:
    return YoloPoseDetector(imgsz=320, device="cpu")


# --------------------------------------------------------------------------- weights, offline
def test_weights_resolution(tmp_path, monkeypatch):
    path, download = resolve_weights(None)
    assert Path(path) == SHIPPED.resolve() and Path(path).is_absolute() and not download
    assert resolve_weights("yolo11n-pose.pt") == (str(SHIPPED.resolve()), False)  # bare -> shipped
    assert resolve_weights("yolo11s-pose.pt") == ("yolo11s-pose.pt", True)  # left to Ultralytics
    assert resolve_weights(SHIPPED) == (str(SHIPPED.resolve()), False)
    with pytest.raises(HGMambaError, match="not found"):
        resolve_weights(tmp_path / "missing.pt")
    with pytest.raises(HGMambaError, match="folder"):
        resolve_weights(tmp_path)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(HGMambaError, match="empty"):
        resolve_weights(tmp_path / "empty.pt")
    # a non-editable install points HGMAMBA_ASSETS at a copy of assets/
    (tmp_path / "weights").mkdir()
    shutil.copyfile(SHIPPED, tmp_path / "weights" / "yolo11n-pose.pt")
    monkeypatch.setenv("HGMAMBA_ASSETS", str(tmp_path))
    assert Path(resolve_weights(None)[0]).parent == (tmp_path / "weights").resolve()


def test_bad_weights_and_arguments_are_one_line_errors(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(HGMambaError, match="cannot load detector weights") as e:
        YoloPoseDetector(bad, device="cpu")
    assert "\n" not in str(e.value)
    with pytest.raises(HGMambaError, match="multiple of 32"):
        YoloPoseDetector(imgsz=300)
    with pytest.raises(HGMambaError, match="conf"):
        YoloPoseDetector(conf=1.5)
    with pytest.raises(HGMambaError, match="YOLO_OFFLINE"):  # conftest sets it: never download
        YoloPoseDetector("yolo11s-pose.pt", device="cpu")


_NO_NETWORK = """
import os, socket, sys
calls = []
def deny(*a, **k):
    calls.append(str(a[:1]))
    raise OSError("network disabled by the test")
socket.getaddrinfo = socket.create_connection = socket.socket.connect = deny
import cv2, ultralytics
from detectors.yolo import YoloPoseDetector
d = YoloPoseDetector(imgsz=320, device="cpu")
img = cv2.imread(os.path.join(os.path.dirname(ultralytics.__file__), "assets", "zidane.jpg"))
n = len(d.detect(img)) + len(d.track(img))
print("people", n, "network", len(calls), calls)
sys.exit(0 if n > 0 and not calls else 1)
"""


def test_runs_fully_offline_without_touching_the_network():
    env = dict(os.environ)  # conftest's YOLO_OFFLINE / YOLO_CONFIG_DIR are inherited
    out = subprocess.run(
        [sys.executable, "-c", _NO_NETWORK], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]


# --------------------------------------------------------------------------- real images
def _assert_plausible(kp: np.ndarray, sc: np.ndarray) -> int:
    """Upright people: head above shoulders above hips above ankles (y grows downwards)."""
    checked = 0
    h, c = coco_to_h36m(kp, sc)
    for p in range(len(h)):
        need = [0, 3, 6, 8, 10]  # pelvis, ankles, thorax, head
        if (c[p, need] < 0.5).any():
            continue
        y = h[p, :, 1]
        assert y[10] < y[8] < y[0] < min(y[3], y[6]), (p, y)
        assert y[14] < y[1] and y[11] < y[4]  # each shoulder above its hip
        checked += 1
    return checked


@pytest.mark.parametrize(("image", "at_least"), [("bus.jpg", 3), ("zidane.jpg", 2)])
def test_people_found_with_plausible_keypoints(image, at_least):
    det = YoloPoseDetector(imgsz=640, device="cpu")
    assert isinstance(det, Pose2DDetector)
    found = det.detect(_ultra_image(image))
    assert len(found) >= at_least
    assert (found.track_ids == -1).all()
    assert found.keypoints.shape == (len(found), 17, 2) and found.scores.shape == (len(found), 17)
    assert ((found.scores >= 0) & (found.scores <= 1)).all()
    h, w = _ultra_image(image).shape[:2]
    ok = found.scores > 0.5
    assert (found.keypoints[ok] >= -1).all() and (found.keypoints[ok][:, 0] <= w + 1).all()
    assert (found.keypoints[ok][:, 1] <= h + 1).all()
    if image == "bus.jpg":  # full bodies, standing: check the skeleton geometry
        assert _assert_plausible(found.keypoints, found.scores) >= 2  # 2 others are cut off


# --------------------------------------------------------------------------- tracking on video
def _write_pan_clip(path: Path, frames: int = 16, step: int = 5) -> None:
    """A camera pan over bus.jpg: every person shifts left by `step` px per frame."""
    img = _ultra_image("bus.jpg")  # 810 x 1080
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (720, 800))
    for i in range(frames):
        vw.write(np.ascontiguousarray(img[200:1000, i * step : i * step + 720]))
    vw.release()


def test_tracking_ids_stable_on_a_pan(tmp_path, yolo320):
    clip = tmp_path / "pan.mp4"
    _write_pan_clip(clip)
    res = detect_video(
        clip, person="all", min_track_frames=14, progress=False, detector=yolo320
    )  # fmt: skip
    poses = res.poses
    assert poses.num_frames == 16 and poses.size == (720, 800) and poses.fps == 10.0
    assert poses.num_persons >= 2
    # stable ids: the two fully visible people keep one id each through all 16 frames (the
    # half-visible person at the frame edge may be split, and then is not kept)
    stats = res.all_tracks
    counts = dict(zip(stats.track_ids.tolist(), stats.frame_counts.tolist(), strict=True))
    assert sum(c == 16 for c in counts.values()) >= 2, counts
    assert len(counts) <= 5, counts
    # the pelvis of every person follows the pan: -5 px per frame in x
    pelvis_dx = np.nanmedian(np.diff(poses.keypoints[:, :, 0, 0], axis=0), axis=0)
    np.testing.assert_allclose(pelvis_dx, -5.0, atol=2.0)
    assert res.timing.frames == 16 and res.timing.detect_s > 0
    # main = the largest (size x duration) track, and it is first in the `all` order
    main = detect_video(clip, progress=False, detector=yolo320)
    assert main.poses.track_ids[0] == poses.track_ids[0]


def test_demo_video_people_and_npz_round_trip(tmp_path):
    """vtest: people are small (~80 px), so this needs imgsz 960; 6 frames keep it quick."""
    det = YoloPoseDetector(imgsz=960, device="cpu")
    res = detect_video(DEMO, person="all", min_track_frames=5, max_frames=6, detector=det,
                       progress=False)  # fmt: skip
    poses = res.poses
    assert poses.num_frames == 6 and poses.size == (768, 576) and poses.fps == 10.0
    assert poses.num_persons >= 2
    assert all(s.length == 6 for s in res.segments[:2])
    kp = poses.keypoints[:, :2]
    assert (kp[..., 3, 1] > kp[..., 8, 1]).all() and (kp[..., 6, 1] > kp[..., 8, 1]).all()
    poses.save(tmp_path / "pose2d.npz")
    back = Pose2DSequence.load(tmp_path / "pose2d.npz")
    np.testing.assert_array_equal(back.keypoints, poses.keypoints)
    np.testing.assert_array_equal(back.track_ids, poses.track_ids)
    with pytest.raises(HGMambaError, match="no such track"):
        detect_video(DEMO, person=999, max_frames=2, detector=det, progress=False)


def test_detect_video_fails_fast_on_bad_input(tmp_path):
    with pytest.raises(HGMambaError, match="--person"):
        detect_video(DEMO, person="tallest")
    with pytest.raises(HGMambaError, match="not found"):
        detect_video(tmp_path / "missing.mp4")
    (tmp_path / "notes.mp4").write_text("just text")
    with pytest.raises(HGMambaError, match="cannot decode"):
        detect_video(tmp_path / "notes.mp4")


def test_frames_without_people_do_not_crash(tmp_path, yolo320):
    path = tmp_path / "empty_scene.mp4"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 240))
    for _ in range(4):
        vw.write(np.full((240, 320, 3), 90, np.uint8))
    vw.release()
    with pytest.raises(HGMambaError, match="no person was detected"):
        detect_video(path, detector=yolo320, progress=False)


@pytest.mark.slow
def test_onnx_backend_matches_torch(tmp_path, monkeypatch):
    """Optional backend: exported once into the cache, then reused; same people as torch."""
    for mod in ("onnx", "onnxruntime", "onnxslim"):
        pytest.importorskip(mod)
    monkeypatch.setenv("HGMAMBA_CACHE", str(tmp_path / "cache"))
    img = _ultra_image("zidane.jpg")
    ref = YoloPoseDetector(imgsz=320, device="cpu").detect(img)
    det = YoloPoseDetector(imgsz=320, device="cpu", backend="onnx")
    cached = list((tmp_path / "cache" / "onnx").glob("*.onnx"))
    assert len(cached) == 1 and det.weights == str(cached[0])
    assert list((tmp_path / "cache" / "onnx").iterdir()) == cached  # no scratch left behind
    got = det.detect(img)
    assert len(got) == len(ref) >= 2
    a = ref.boxes[np.argsort(ref.boxes[:, 0])]
    b = got.boxes[np.argsort(got.boxes[:, 0])]
    # not bit-equal: the fixed-shape ONNX input is padded square, torch pads minimally
    np.testing.assert_allclose(a, b, atol=0.015 * img.shape[1])
    again = YoloPoseDetector(imgsz=320, device="cpu", backend="onnx")
    assert again.weights == det.weights  # reused, not exported again
    with pytest.raises(HGMambaError, match="backend"):
        YoloPoseDetector(backend="tensorrt")


# --------------------------------------------------------------------------- person selection
def test_person_selection_rules():
    # track 1: performer, big but on screen 40 frames; 2: small bystander, all 100 frames;
    # 3: a big close-up passer-by for 5 frames
    stats = TrackStats(
        track_ids=np.array([1, 2, 3]),
        frame_counts=np.array([40, 100, 5]),
        area_sums=np.array([40 * 9000.0, 100 * 1000.0, 5 * 20000.0]),
    )
    assert select_tracks(stats, "main", 10) == [1]
    assert select_tracks(stats, "longest", 10) == [2]
    assert select_tracks(stats, "largest", 10) == [3]
    assert select_tracks(stats, "all", 10) == [1, 2]  # the 5-frame track is too short
    assert select_tracks(stats, "all", 500) == [1]  # none long enough: the main one
    assert select_tracks(stats, "3", 10) == [3]
    with pytest.raises(HGMambaError, match="tracks found: 1, 2, 3"):
        select_tracks(stats, 7, 10)


@pytest.mark.parametrize("user_verbose", [None, "False"])
def test_first_ultralytics_import_prints_no_settings_banner(tmp_path, user_verbose):
    """A fresh machine: Ultralytics writes its settings file without its four-line banner, and
    its logger is back at INFO afterwards unless the user turned it down (YOLO_VERBOSE)."""
    env = {**os.environ, "YOLO_CONFIG_DIR": str(tmp_path)}
    env.pop("YOLO_VERBOSE", None)
    if user_verbose is not None:
        env["YOLO_VERBOSE"] = user_verbose
    code = (
        "import os; from detectors.yolo import import_yolo; import_yolo();"
        "from ultralytics.utils import LOGGER;"
        "print('level', LOGGER.level, os.environ.get('YOLO_VERBOSE'))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Settings" not in run.stdout + run.stderr
    assert list(tmp_path.rglob("settings.json"))  # the file is still written
    level = 20 if user_verbose is None else 40  # logging.INFO / ERROR
    assert run.stdout.split()[-2:] == [str(level), str(user_verbose)]
