"""Detector runtimes: which one `auto` picks, where exports are cached, real exports when the
optional packages are installed (only the set of installed packages is faked)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from detectors.backends import (
    AUTO_ORDER,
    REQUIREMENTS,
    choose_backend,
    export_path,
    fitted_input,
    missing_packages,
)
from detectors.yolo import YoloPoseDetector
from hgmamba_core.assets import cache_root
from hgmamba_core.errors import HGMambaError

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "assets" / "weights" / "yolo11n-pose.pt"


def _only(*modules: str):
    """An `installed` check that says yes to exactly these modules."""
    return lambda m: m in modules


def test_auto_prefers_openvino_then_onnx_then_torch():
    ov, ort = REQUIREMENTS["openvino"], REQUIREMENTS["onnx"]
    assert AUTO_ORDER == ("openvino", "onnx")
    assert choose_backend("auto", "cpu", _only(*ov, *ort)) == "openvino"
    assert choose_backend("auto", "cpu", _only(*ov)) == "openvino"
    assert choose_backend("auto", "cpu", _only(*ort)) == "onnx"
    assert choose_backend("auto", "cpu", _only("onnx", "onnxruntime")) == "torch"  # no onnxslim
    assert choose_backend("auto", "cpu", _only()) == "torch"
    assert choose_backend("auto", "cuda", _only(*ov, *ort)) == "torch"  # a GPU runs torch
    assert choose_backend("auto", "mps", _only(*ov, *ort)) == "torch"


def test_explicit_backend_requests():
    assert choose_backend("torch", "cuda", _only()) == "torch"
    assert choose_backend("onnx", "cpu", _only(*REQUIREMENTS["onnx"])) == "onnx"
    with pytest.raises(HGMambaError, match=r"hgmamba\[openvino\]"):
        choose_backend("openvino", "cpu", _only(*REQUIREMENTS["onnx"]))
    with pytest.raises(HGMambaError, match="onnxslim"):
        choose_backend("onnx", "cpu", _only("onnx", "onnxruntime"))
    with pytest.raises(HGMambaError, match="--device cpu"):
        choose_backend("openvino", "cuda", _only(*REQUIREMENTS["openvino"]))
    with pytest.raises(HGMambaError, match="must be one of"):
        choose_backend("tensorrt", "cpu", _only())
    assert missing_packages("torch", _only()) == []


def test_cache_path_keyed_by_content_and_size(tmp_path, monkeypatch):
    monkeypatch.setenv("HGMAMBA_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    a, b, c = tmp_path / "a" / "w.pt", tmp_path / "b" / "w.pt", tmp_path / "w2.pt"
    for p, data in ((a, b"one"), (b, b"two"), (c, b"one")):
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(data)
    pa = export_path(a, 320, "onnx")
    assert pa.parent == tmp_path / "c" / "onnx" and pa.suffix == ".onnx"
    assert export_path(b, 320, "onnx") != pa  # same name, other content
    assert export_path(c, 320, "onnx").name.split("-")[1] == pa.name.split("-")[1]  # same content
    assert export_path(a, 640, "onnx") != pa
    assert export_path(a, (256, 320), "onnx").name.endswith("-256x320.onnx")
    ov = export_path(a, 320, "openvino")
    assert ov.parent == tmp_path / "c" / "openvino" and ov.name.endswith("_openvino_model")
    monkeypatch.delenv("HGMAMBA_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "hgmamba"


def test_fixed_export_input_fits_the_video_like_torchs_letterbox():
    assert fitted_input(640, (768, 576)) == (480, 640)  # 4:3, torch's own 640x480
    assert fitted_input(640, (1280, 720)) == (384, 640)  # 16:9: 360 rounded up to 32
    assert fitted_input(960, (576, 768)) == (960, 736)  # portrait: (height, width)
    assert fitted_input(640, (500, 500)) == (640, 640)
    assert fitted_input(320, (4000, 10)) == (32, 320)  # never below one stride
    assert fitted_input(640, None) == 640  # size unknown: square


def test_failed_export_falls_back_to_torch(tmp_path, monkeypatch):
    """An unwritable cache (here: a file in its place) makes auto run torch, with one note."""
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    monkeypatch.setenv("HGMAMBA_CACHE", str(blocker))
    det = YoloPoseDetector(imgsz=320, device="cpu", backend="auto")
    assert det.backend == "torch" and det.weights == str(SHIPPED.resolve())
    if choose_backend("auto", "cpu") == "torch":  # nothing optional installed: nothing to note
        assert det.notes == []
    else:
        assert len(det.notes) == 1 and "instead" in det.notes[0]


def _ultra_image(name: str) -> np.ndarray:
    import ultralytics

    img = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / name))
    assert img is not None, name
    return img


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["openvino", "onnx"])
def test_real_export_matches_torch(backend, tmp_path, monkeypatch):
    """Exported once into the cache (nothing else left there), reused, and the same people."""
    for mod in REQUIREMENTS[backend]:
        pytest.importorskip(mod)
    monkeypatch.setenv("HGMAMBA_CACHE", str(tmp_path / "cache"))
    img = _ultra_image("zidane.jpg")
    ref = YoloPoseDetector(imgsz=320, device="cpu", backend="torch").detect(img)
    size = (img.shape[1], img.shape[0])
    det = YoloPoseDetector(imgsz=320, device="cpu", backend=backend, frame_size=size)
    assert det.backend == backend and det.notes == [] and det.input_size == (192, 320)
    target = Path(det.weights)
    assert list(target.parent.iterdir()) == [target]  # no scratch left behind
    got = det.detect(img)
    assert len(got) == len(ref) >= 2
    a = ref.boxes[np.argsort(ref.boxes[:, 0])]
    b = got.boxes[np.argsort(got.boxes[:, 0])]
    # near, not bit-equal: another runtime (same letterbox, as the input fits the image)
    np.testing.assert_allclose(a, b, atol=0.015 * img.shape[1])
    mtime = target.stat().st_mtime_ns
    again = YoloPoseDetector(imgsz=320, device="cpu", backend=backend, frame_size=size)
    assert again.weights == det.weights and target.stat().st_mtime_ns == mtime  # reused
    shutil.rmtree(tmp_path / "cache")
