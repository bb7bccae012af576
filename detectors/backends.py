"""Which runtime runs the YOLO-Pose detector: PyTorch, ONNX Runtime or OpenVINO.

On a laptop CPU the same weights run 2-3x faster through OpenVINO or ONNX Runtime than through
PyTorch (see bench/detector.py), so `auto` picks the fastest one installed when the detector
runs on the CPU, and PyTorch on a GPU. The non-torch backends need an export of the .pt
weights, made once per (weights content, imgsz) with Ultralytics' own exporter, locally and
without network, and kept under $HGMAMBA_CACHE/<backend> or ~/.cache/hgmamba/<backend>. The
export is written in a scratch folder inside the cache and renamed into place, so an
interrupted export never leaves a half-written model that a later run would load.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

from hgmamba_core.assets import cache_root
from hgmamba_core.errors import HGMambaError

BACKENDS = ("auto", "torch", "onnx", "openvino")
# what each exported backend needs installed (to export and to run), and the pip extra
REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "onnx": ("onnx", "onnxruntime", "onnxslim"),
    "openvino": ("openvino",),
}
EXTRAS = {"onnx": "onnx", "openvino": "openvino"}
AUTO_ORDER = ("openvino", "onnx")  # fastest first on the 2-core CPU we measured
Size = int | tuple[int, int]  # imgsz: square side, or (height, width) fitted to the video


def fitted_input(imgsz: int, frame_size: tuple[int, int] | None) -> Size:
    """The fixed export input for frames of `frame_size` (w, h): the long side `imgsz`, the short
    one the smallest multiple of 32 that holds the scaled frame. A square export of a 4:3 or
    16:9 video would spend 33-78 % more pixels on padding than torch's own letterbox does."""
    if frame_size is None:
        return imgsz
    w, h = frame_size
    scaled = round(imgsz * min(w, h) / max(w, h))  # the short side after scaling, as torch
    short = max(32, min(imgsz, math.ceil(scaled / 32) * 32))
    return (short, imgsz) if w >= h else (imgsz, short)


def _size_tag(imgsz: Size) -> str:
    if isinstance(imgsz, tuple):
        return f"{imgsz[0]}x{imgsz[1]}"
    return str(int(imgsz))


def is_installed(module: str) -> bool:
    """True when `module` can be imported (checked without importing it: that is slow)."""
    return importlib.util.find_spec(module) is not None


def missing_packages(backend: str, installed: Callable[[str], bool] = is_installed) -> list[str]:
    """The packages `backend` still needs ([] for torch, which is always there)."""
    return [m for m in REQUIREMENTS.get(backend, ()) if not installed(m)]


def choose_backend(
    requested: str, device: str, installed: Callable[[str], bool] = is_installed
) -> str:
    """The backend to run: `requested` itself, or for `auto` the fastest one installed on a CPU.

    An explicit onnx/openvino request whose packages are missing is a one-line error naming the
    extra to install; exported backends run on the CPU only.
    """
    if requested not in BACKENDS:
        raise HGMambaError(f"--detector-backend must be one of {', '.join(BACKENDS)}")
    if requested == "auto":
        if device != "cpu":
            return "torch"
        return next((b for b in AUTO_ORDER if not missing_packages(b, installed)), "torch")
    if requested == "torch":
        return requested
    if device != "cpu":
        raise HGMambaError(f"--detector-backend {requested} runs on the CPU: use --device cpu")
    missing = missing_packages(requested, installed)
    if missing:
        raise HGMambaError(
            f"--detector-backend {requested} needs the '{missing[0]}' package: "
            f"pip install 'hgmamba[{EXTRAS[requested]}]'"
        )
    return requested


def weights_digest(weights: str | os.PathLike) -> str:
    """Short content hash: a retrained file under the same name gets a new export."""
    h = hashlib.sha256()
    with open(weights, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def export_path(
    weights: str | os.PathLike, imgsz: Size, backend: str, root: Path | None = None
) -> Path:
    """Where the export of these weights for this imgsz lives (a file for onnx, a folder for
    openvino, as Ultralytics loads them)."""
    src = Path(weights)
    stem = f"{src.stem}-{weights_digest(src)}-{_size_tag(imgsz)}"
    folder = (root or cache_root()) / backend
    if backend == "onnx":
        return folder / f"{stem}.onnx"
    if backend == "openvino":
        return folder / f"{stem}_openvino_model"
    raise ValueError(f"no export for backend {backend!r}")


def _is_complete(path: Path) -> bool:
    if path.is_dir():
        return any(path.glob("*.xml")) and any(path.glob("*.bin"))
    return path.is_file() and path.stat().st_size > 0


def _run_export(pt: Path, backend: str, imgsz: Size) -> Path:
    """Ultralytics' exporter on a scratch copy of the weights; returns what it wrote."""
    from detectors.yolo import import_yolo, quiet_ultralytics

    yolo_cls = import_yolo()
    with quiet_ultralytics(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.trace deprecation, not ours
        out = yolo_cls(str(pt), task="pose").export(
            format=backend, imgsz=list(imgsz) if isinstance(imgsz, tuple) else imgsz, simplify=True, dynamic=False, device="cpu",
            verbose=False,
        )  # fmt: skip
    return Path(out)


def export_weights(
    weights: str | os.PathLike, imgsz: Size, backend: str, root: Path | None = None
) -> Path:
    """The cached export of local .pt `weights` for `backend` and `imgsz`, made on first use.

    Raises HGMambaError (one line) when the cache cannot be written or the export fails.
    """
    target = export_path(weights, imgsz, backend, root)
    if _is_complete(target):
        return target
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".export-", dir=folder))
    except OSError as e:
        raise HGMambaError(
            f"cannot write the {backend} cache in {folder}: {e.strerror or e}"
        ) from None
    print(
        f"exporting the detector to {backend} for imgsz {_size_tag(imgsz)} (once; kept in {folder})",
        file=sys.stderr,
    )
    try:
        pt = scratch / Path(weights).name
        shutil.copyfile(weights, pt)
        try:
            out = _run_export(pt, backend, imgsz)
        except Exception as e:  # Ultralytics and the converters raise many types
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise HGMambaError(f"{backend} export of {weights} failed: {first}") from None
        if target.exists():  # a parallel run finished first: keep its copy
            return target
        os.replace(out, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target
