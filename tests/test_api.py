"""The Python API on small real inputs: H36M S9 2D as an array and as a file, an 8-frame video."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from hgmamba_core import HGMamba, LiftResult
from hgmamba_core.errors import HGMambaError
from hgmamba_core.metrics import p_mpjpe

REPO = Path(__file__).resolve().parents[1]
FRAMES = 40  # > T = 27: two windows and a blend, still fast
CAM = "S9.54138969"


@pytest.fixture(scope="module")
def model() -> HGMamba:
    if not (REPO / "assets" / "weights" / "hgmamba_xs_h36m.pt").is_file():
        pytest.skip("shipped XS weights missing")
    return HGMamba("xs", device="cpu", flip=False)  # flip TTA doubles the cost, tested elsewhere


@pytest.fixture(scope="module")
def s9(h36m_mini) -> dict:
    """Ground-truth 2D of S9 (a test subject) in pixels, its 3D, the camera's image size."""
    return {
        "kp": h36m_mini[f"S9/Directions.{CAM.split('.')[1]}"][:FRAMES],
        "gt": h36m_mini["S9/Directions"][:FRAMES],
        "size": tuple(int(v) for v in h36m_mini[f"cam/{CAM}/res"]),
    }


@pytest.fixture(scope="module")
def lifted(model, s9) -> LiftResult:
    return model.lift(s9["kp"], size=s9["size"], fps=50, layout="h36m")


def test_array_lift_is_typed_and_accurate(lifted, s9):
    assert isinstance(lifted, LiftResult)
    assert lifted.poses3d.shape == (FRAMES, 1, 17, 3)
    assert lifted.poses2d.shape == (FRAMES, 1, 17, 2)
    assert lifted.track_ids.tolist() == [0] and lifted.fps == 50.0 and lifted.size == s9["size"]
    np.testing.assert_allclose(lifted.poses2d[:, 0], s9["kp"], atol=1e-3)
    assert np.isfinite(lifted.poses3d).all()
    # real lifting, not a mean pose: P-MPJPE against the ground truth (~25 mm here)
    assert p_mpjpe(lifted.poses3d[:, 0] * 1000, s9["gt"] * 1000) < 60
    assert lifted.poses3d[..., 2].min() > -0.3  # world frame: z up, floor near 0
    cam = lifted.camera  # the pipeline's estimate if it makes one, else None
    assert cam is None or hasattr(cam, "pitch_deg") or "pitch_deg" in cam


def test_keypoint_file_gives_the_same_result(model, lifted, s9, tmp_path):
    f = tmp_path / "s9.npz"
    np.savez(f, keypoints=s9["kp"], fps=50.0, size=np.array(s9["size"]), layout="h36m")
    again = model.lift(f)
    np.testing.assert_allclose(again.poses3d, lifted.poses3d, atol=1e-5)


def test_save_and_to_json_match_the_cli_files(lifted, tmp_path):
    out = tmp_path / "res"
    paths = lifted.save(out, formats=("npy", "json", "html"))
    names = sorted(p.name for p in paths)
    assert names == ["pose2d.npz", "pose3d.html", "pose3d.json", "pose3d.npy"]
    assert sorted(p.name for p in out.iterdir()) == names  # no staging left behind
    np.testing.assert_array_equal(np.load(out / "pose3d.npy"), lifted.poses3d)
    with np.load(out / "pose2d.npz") as z:
        assert float(z["fps"]) == 50.0 and z["keypoints"].shape == (FRAMES, 1, 17, 2)
    assert lifted.to_json() == (out / "pose3d.json").read_text()
    doc = lifted.to_dict()
    assert doc["metadata"]["variant"] == "xs" and len(doc["frames"]) == FRAMES


def test_bad_inputs_are_one_line_errors(model, s9):
    with pytest.raises(HGMambaError, match="size=.*fps"):
        model.lift(s9["kp"])
    with pytest.raises(HGMambaError, match=r"\(frames\[, persons\], 17, 2\|3\)"):
        model.lift(np.zeros((10, 16, 2)), size=(100, 100), fps=25)
    with pytest.raises(HGMambaError, match="not found"):
        model.lift("missing.mp4")
    with pytest.raises(HGMambaError, match="unknown model"):
        HGMamba("xl")


def test_video_lift_save_with_render(model, tmp_path):
    """An 8-frame video (shorter than T): detector, tracker, lifter, and the side-by-side mp4."""
    import ultralytics

    img = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg"))
    video = tmp_path / "bus.mp4"
    vw = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, img.shape[1::-1])
    for i in range(8):
        vw.write(np.roll(img, 2 * i, axis=1))
    vw.release()
    res = model.lift(video, person="all", detector_imgsz=320)
    assert res.video == video and res.size == (810, 1080) and res.fps == pytest.approx(10.0)
    assert res.poses3d.shape[0] == 8 and res.poses3d.shape[1] >= 1
    assert res.poses3d.shape[1] == res.track_ids.shape[0]
    paths = res.save(tmp_path / "out", formats=("npy", "mp4"))
    mp4 = tmp_path / "out" / "bus_3d.mp4"
    assert mp4 in paths
    cap = cv2.VideoCapture(str(mp4))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 8


def test_rotate_reaches_the_2d_and_the_render(model, tmp_path):
    """rotate=90 on a sideways clip: sizes turned, recorded, and the render shows turned frames."""
    import ultralytics

    img = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg"))
    side = np.ascontiguousarray(np.rot90(img))  # the bus photo turned 90° anticlockwise
    video = tmp_path / "side.mp4"
    vw = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, side.shape[1::-1])
    for _ in range(4):
        vw.write(side)
    vw.release()
    res = model.lift(video, person="all", detector_imgsz=320, rotate=90)
    assert res.size == (810, 1080) and res.pose3d.input_info["rotate_deg"] == 90
    mp4 = res.render(tmp_path / "side_3d.mp4")
    ok, frame = cv2.VideoCapture(str(mp4)).read()
    assert ok
    h = frame.shape[0]
    left = frame[:, : round(h * 810 / 1080)].astype(np.float32)
    upright = cv2.resize(img, left.shape[1::-1]).astype(np.float32)
    turned = cv2.resize(side, left.shape[1::-1]).astype(np.float32)
    assert np.abs(left - upright).mean() < 0.5 * np.abs(left - turned).mean()


def test_checkpoint_path_and_keyword(tmp_path, s9):
    from hgmamba_core.model import build_model
    from hgmamba_core.model.checkpoint import save_checkpoint

    ckpt = save_checkpoint(tmp_path / "tiny.pt", build_model("tiny"))
    model = HGMamba(variant_or_checkpoint=ckpt, device="cpu")
    assert (model.variant, model.frames, model.checkpoint) == ("tiny", 9, str(ckpt))
    res = model.lift(s9["kp"][:12], size=s9["size"], fps=50, layout="h36m")
    assert res.poses3d.shape == (12, 1, 17, 3) and res.pose3d.variant == "tiny"
