"""Read precomputed 2D keypoints instead of running the detector (`--keypoints FILE`).

Formats (detected from the content):
(a) our own pose2d.npz (Pose2DSequence.save): keys keypoints, scores, track_ids, fps, size;
(b) a VideoPose3D custom npz (prepare_data_2d_custom): pickled dicts `positions_2d`
    {video: {"custom": [array (F, 17, 2|3|4)]}} and `metadata` {"layout_name", "video_metadata":
    {video: {"w", "h"}}}. These are unpickled by hgmamba_core.data.safe_npz, whose whitelist
    admits only numpy arrays, dtypes and plain containers, never arbitrary objects;
(c) a plain array, npz (key `keypoints`, or the only array) or json (a bare nested list, or an
    object with `keypoints`), shaped frames x [persons x] 17 x 2|3 (x, y[, confidence]),
    COCO-17 or H36M-17 (auto-detected, or given as layout="coco"|"h36m"). Optional keys:
    scores, fps, size [w, h] (or width/height), layout.

In (b) and (c) a point with confidence 0, or exactly at (0, 0) without a confidence, means
"missing" (the OpenPose/Detectron convention); NaN or inf is an error. Without a confidence
channel every point gets confidence 1.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hgmamba_core.data.safe_npz import load_npz_dicts
from hgmamba_core.errors import HGMambaError
from hgmamba_core.poses import Pose2DSequence
from hgmamba_core.skeleton import NUM_JOINTS

LAYOUTS = ("coco", "h36m")
# Layout auto-detection margin: mean y of joints 13-16 minus joints 1-4, over body height.
_LAYOUT_MARGIN = 0.15


@dataclass
class RawKeypoints:
    """Keypoints as read from a file: (F, P, 17, 2) pixels + (F, P, 17) scores, NaN missing.

    fps / size are None when the file does not say; `cleaned` marks our own output files.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    track_ids: np.ndarray
    layout: str
    fps: float | None
    size: tuple[int, int] | None
    source: str
    cleaned: bool = False


def _unwrap(obj: Any) -> Any:
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        return obj.item()
    return obj


# --------------------------------------------------------------------------- helpers
def _finite_array(a: Any, path: Path, what: str) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise HGMambaError(f"{path}: {what} must be numbers (found non-numeric values)") from None
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise HGMambaError(
            f"{path}: {what} holds {int(bad.sum())} NaN/inf values (first at index {first}); "
            "mark missing points with confidence 0 instead"
        )
    return arr


def _split_channels(
    arr: np.ndarray, path: Path, scores: Any | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(F, [P,] 17, C) -> (F, P, 17, 2) xy and (F, P, 17) confidence, missing -> NaN."""
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[2] != NUM_JOINTS or arr.shape[3] not in (2, 3, 4):
        raise HGMambaError(
            f"{path}: keypoints must be frames x [persons x] 17 x 2|3 (x, y[, conf]), "
            f"got shape {tuple(arr.shape)}"
        )
    if arr.shape[0] == 0:
        raise HGMambaError(f"{path}: no frames in the keypoint file")
    xy = arr[..., :2].astype(np.float32)
    if scores is not None:
        conf = _finite_array(scores, path, "scores")
        if conf.ndim == 2:
            conf = conf[:, None]
        if conf.shape != arr.shape[:3]:
            raise HGMambaError(f"{path}: scores must have shape {arr.shape[:3]}, got {conf.shape}")
        conf = conf.astype(np.float32)
        missing = conf <= 0
    elif arr.shape[3] >= 3:
        conf = arr[..., -1].astype(np.float32)  # (x, y, conf) or Detectron's (x, y, logit, prob)
        missing = conf <= 0
    else:
        conf = np.ones(arr.shape[:3], dtype=np.float32)
        missing = (xy == 0).all(-1)
    xy[missing] = np.nan
    conf[missing] = np.nan
    return xy, conf


def detect_layout(keypoints: np.ndarray) -> str | None:
    """'coco' or 'h36m' from joint geometry in image coordinates (y down), None if unclear.

    COCO joints 1-4 are eyes/ears and 13-16 knees/ankles (so 1-4 sit far above 13-16); in H36M
    1-4 are right leg + left hip and 13-16 wrist/shoulder/arm joints (1-4 sit below 13-16).
    """
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, NUM_JOINTS, 2)
    y = kp[..., 1]
    ok = np.isfinite(y[:, 1:5]).any(1) & np.isfinite(y[:, 13:17]).any(1)
    if not ok.any():
        return None
    y = y[ok]
    with np.errstate(invalid="ignore"):
        height = np.nanmax(y, 1) - np.nanmin(y, 1)
        diff = (np.nanmean(y[:, 13:17], 1) - np.nanmean(y[:, 1:5], 1)) / np.maximum(height, 1e-6)
    score = float(np.nanmedian(diff))
    if score > _LAYOUT_MARGIN:
        return "coco"
    if score < -_LAYOUT_MARGIN:
        return "h36m"
    return None


def _size_from(meta: dict[str, Any], path: Path) -> tuple[int, int] | None:
    size = meta.get("size")
    if size is None and meta.get("width") is not None and meta.get("height") is not None:
        size = (meta["width"], meta["height"])
    if size is None and meta.get("w") is not None and meta.get("h") is not None:
        size = (meta["w"], meta["h"])
    if size is None:
        return None
    try:
        w, h = (int(v) for v in np.asarray(size).reshape(-1)[:2])
    except (TypeError, ValueError):
        raise HGMambaError(f"{path}: size must be [width, height], got {size!r}") from None
    if w <= 0 or h <= 0:
        raise HGMambaError(f"{path}: size must be positive, got {w}x{h}")
    return (w, h)


def _fps_from(meta: dict[str, Any], path: Path) -> float | None:
    fps = meta.get("fps")
    if fps is None:
        return None
    try:
        v = float(np.asarray(fps).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        raise HGMambaError(f"{path}: fps must be a number, got {fps!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise HGMambaError(f"{path}: fps must be positive, got {v}")
    return v


def _layout_arg(layout: Any, path: Path) -> str | None:
    if layout is None:
        return None
    v = str(np.asarray(layout).reshape(-1)[0] if isinstance(layout, np.ndarray) else layout)
    v = v.strip().lower()
    if v not in LAYOUTS:
        raise HGMambaError(f"{path}: layout must be coco or h36m, got '{v}'")
    return v


def _from_array(
    arr: Any, meta: dict[str, Any], path: Path, layout: str | None, scores: Any = None
) -> RawKeypoints:
    xy, conf = _split_channels(_finite_array(arr, path, "keypoints"), path, scores)
    file_layout = _layout_arg(meta.get("layout") or meta.get("layout_name"), path)
    lay = layout or file_layout or detect_layout(xy)
    if lay is None:
        raise HGMambaError(
            f"{path}: cannot tell whether the 17 joints are COCO or H36M order: pass --layout"
        )
    return RawKeypoints(
        keypoints=xy, scores=conf, track_ids=np.arange(xy.shape[1], dtype=np.int64),
        layout=lay, fps=_fps_from(meta, path), size=_size_from(meta, path), source=str(path),
    )  # fmt: skip


# --------------------------------------------------------------------------- readers
def _read_vp3d(
    z: dict[str, Any], path: Path, layout: str | None, entry: str | None, hint: str | None = None
) -> RawKeypoints:
    pos = _unwrap(z["positions_2d"])
    meta = _unwrap(z.get("metadata", np.array({}, dtype=object)))
    if not isinstance(pos, dict) or not pos:
        raise HGMambaError(f"{path}: positions_2d must be a non-empty dict of videos")
    meta = meta if isinstance(meta, dict) else {}
    names = sorted(pos)
    if entry is None and hint in pos:
        entry = hint
    if entry is None:
        if len(names) > 1:
            raise HGMambaError(
                f"{path} holds {len(names)} videos ({', '.join(map(str, names[:10]))}): "
                "name one with video/entry"
            )
        entry = names[0]
    if entry not in pos:
        raise HGMambaError(
            f"{path}: no video '{entry}'; it holds {', '.join(map(str, names[:10]))}"
        )
    node = pos[entry]
    if isinstance(node, dict):  # {"custom": [cam0, ...]} or {action: [cams]}
        node = node.get("custom", next(iter(node.values())) if len(node) == 1 else None)
    if isinstance(node, (list, tuple)):
        node = node[0] if node else None
    if not isinstance(node, np.ndarray):
        raise HGMambaError(
            f"{path}: positions_2d['{entry}'] is not a keypoint array (expected {{'custom': [array]}})"
        )
    vmeta = dict((meta.get("video_metadata") or {}).get(entry) or {})
    vmeta["layout_name"] = meta.get("layout_name")
    if vmeta["layout_name"] not in (None, *LAYOUTS):
        raise HGMambaError(
            f"{path}: unsupported layout_name '{vmeta['layout_name']}' (coco or h36m)"
        )
    raw = _from_array(node, vmeta, path, layout)
    raw.source = f"{path}:{entry}"
    return raw


def _read_npz(
    path: Path, layout: str | None, entry: str | None, hint: str | None = None
) -> RawKeypoints:
    if not zipfile.is_zipfile(path):
        raise HGMambaError(f"cannot read {path}: not a valid npz (zip) file")
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.files)
            z_arrays = None if "positions_2d" in keys else {k: z[k] for k in keys}
    except ValueError:
        raise HGMambaError(
            f"{path}: holds pickled objects but is not a VideoPose3D file (no positions_2d); "
            "refusing to unpickle it"
        ) from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise HGMambaError(f"cannot read {path}: not a valid npz ({e})") from None
    if z_arrays is None:
        return _read_vp3d(load_npz_dicts(path), path, layout, entry, hint)
    if {"keypoints", "scores", "track_ids", "fps", "size"} <= set(z_arrays):
        seq = Pose2DSequence.load(path)
        if layout not in (None, seq.layout):
            raise HGMambaError(
                f"{path} is our {seq.layout} pose2d file; --layout {layout} conflicts"
            )
        return RawKeypoints(
            keypoints=seq.keypoints, scores=seq.scores, track_ids=seq.track_ids,
            layout=seq.layout, fps=seq.fps, size=seq.size, source=seq.source or str(path),
            cleaned=True,
        )  # fmt: skip
    arrays = {k: v for k, v in z_arrays.items() if v.ndim >= 3}
    if "keypoints" in z_arrays:
        key = "keypoints"
    elif len(arrays) == 1:
        key = next(iter(arrays))
    else:
        raise HGMambaError(
            f"{path}: cannot tell which array holds the keypoints ({', '.join(keys)}); "
            "name it 'keypoints'"
        )
    meta = {k: v for k, v in z_arrays.items() if k != key}
    return _from_array(z_arrays[key], meta, path, layout, meta.pop("scores", None))


def _read_json(path: Path, layout: str | None) -> RawKeypoints:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HGMambaError(f"{path}: not valid JSON ({e})") from None
    if isinstance(data, dict):
        if "keypoints" not in data:
            raise HGMambaError(f"{path}: JSON object needs a 'keypoints' field")
        meta = {k: v for k, v in data.items() if k != "keypoints"}
        return _from_array(data["keypoints"], meta, path, layout, meta.pop("scores", None))
    if isinstance(data, list):
        return _from_array(data, {}, path, layout)
    raise HGMambaError(f"{path}: JSON must be a list of frames or an object with 'keypoints'")


def read_keypoint_file(
    path: str | os.PathLike,
    layout: str | None = None,
    entry: str | None = None,
    video_name: str | None = None,
) -> RawKeypoints:
    """Read any supported 2D keypoint file (see the module doc); errors are one line.

    `entry` picks the video inside a VideoPose3D file holding several; without it a video
    named `video_name` (the file name of the video being lifted) is used when present.
    """
    p = Path(path)
    if not p.is_file():
        raise HGMambaError(f"keypoint file not found: {p}")
    if p.stat().st_size == 0:
        raise HGMambaError(f"keypoint file is empty (0 bytes): {p}")
    layout = _layout_arg(layout, p)
    suffix = p.suffix.lower()
    if suffix == ".npz":
        return _read_npz(p, layout, entry, video_name)
    if suffix == ".json":
        return _read_json(p, layout)
    if suffix == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise HGMambaError(f"cannot read {p}: {e}") from None
        return _from_array(arr, {}, p, layout)
    raise HGMambaError(f"{p}: keypoint files must be .npz, .npy or .json")
