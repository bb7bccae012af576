"""pose3d.html: one self-contained, offline 3D viewer of a lift result.

The page is `viewer.html` with the clip's data (JSON, millimetres as integers) and `viewer.js`
inlined: a ~220-line canvas-2D renderer of our own (orbit camera, painter's-order lines). We
chose it over vendoring three.js (~700 kB minified) because the scene is only line segments
(skeletons, a floor grid, a camera frustum); the page then has no third-party code or licence
to carry, and nothing is fetched when it is opened.
"""

from __future__ import annotations

import html
import json
import math
import os
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from hgmamba_core.fileio import write_text_atomic
from hgmamba_core.poses import Pose3DSequence
from hgmamba_core.skeleton import H36M_NAMES, H36M_PARENTS

ASSUMED_CAMERA_HEIGHT_M = 1.5  # only for drawing when the result has no height estimate
FRUSTUM_DEPTH_M = 0.35


@dataclass(frozen=True)
class ViewerCamera:
    """The estimated camera as the page draws it: a pyramid at `position` (world metres)."""

    position: tuple[float, float, float]
    forward: tuple[float, float, float]
    right: tuple[float, float, float]
    down: tuple[float, float, float]
    half_w: float  # tan of half the horizontal field of view
    half_h: float
    depth: float
    label: str


def camera_axes(pitch_deg: float, roll_deg: float) -> np.ndarray:
    """R (world = R @ cam) of a camera looking down by pitch, rolled by roll, with no yaw.

    Camera x right, y down, z forward; world x right, y forward, z up. Positive roll: the
    image's right side points below the horizon (the convention of the world estimate).
    """
    t, r = math.radians(pitch_deg), math.radians(roll_deg)
    up = np.array([-math.sin(r) * math.cos(t), -math.cos(r) * math.cos(t), -math.sin(t)])
    fwd = np.array([0.0, 0.0, 1.0]) - up[2] * up
    if np.linalg.norm(fwd) < 1e-9:  # straight down: the image's top edge is forward
        fwd = np.array([0.0, -1.0, 0.0]) - up[1] * up
    fwd /= np.linalg.norm(fwd)
    return np.stack([np.cross(fwd, up), fwd, up])


def viewer_camera(meta: dict) -> ViewerCamera | None:
    """The camera to draw from a result's metadata: the estimate if there is one, else the
    fixed-tilt assumption of the world conversion (height then unknown: drawn at 1.5 m)."""
    cam = meta.get("camera") if isinstance(meta.get("camera"), dict) else None
    size = meta.get("image_size") or [4, 3]
    w, h = float(size[0]), float(size[1])
    if cam is not None and cam.get("pitch_deg") is not None:
        pitch, roll = float(cam["pitch_deg"]), float(cam.get("roll_deg") or 0.0)
        height, focal = cam.get("height_m"), cam.get("focal_px")
        method = str(cam.get("method", "estimated"))
    elif "camera_tilt_deg" in meta:
        pitch, roll, height, focal, method = float(meta["camera_tilt_deg"]), 0.0, None, None, ""
        method = "assumed tilt"
    else:
        return None
    focal = float(focal) if focal else max(w, h)
    known = height is not None and math.isfinite(float(height))
    z = float(height) if known else ASSUMED_CAMERA_HEIGHT_M
    label = f"camera {pitch:.0f}° down, " + (
        f"{z:.1f} m high ({method})" if known else f"height not estimated ({method})"
    )
    R = camera_axes(pitch, roll)
    vec = lambda v: tuple(round(float(x), 5) for x in v)  # noqa: E731
    return ViewerCamera(
        position=(0.0, 0.0, round(z, 4)), forward=vec(R[:, 2]), right=vec(R[:, 0]),
        down=vec(R[:, 1]), half_w=round(w / 2 / focal, 5), half_h=round(h / 2 / focal, 5),
        depth=FRUSTUM_DEPTH_M, label=label,
    )  # fmt: skip


def _joints_mm(joints: np.ndarray) -> list[list[list[int | None] | None]]:
    """(F, P, 17, 3) metres -> per frame, per person: None if absent, else 51 ints (mm) with
    None for each coordinate of a joint that is not finite."""
    mm = np.round(np.asarray(joints, dtype=np.float64) * 1000.0)
    ok = np.isfinite(mm).all(axis=-1)  # (F, P, 17)
    out: list[list[list[int | None] | None]] = []
    for f in range(mm.shape[0]):
        row: list[list[int | None] | None] = []
        for p in range(mm.shape[1]):
            if not ok[f, p].any():
                row.append(None)
                continue
            flat: list[int | None] = []
            for j in range(mm.shape[2]):
                flat += [int(v) for v in mm[f, p, j]] if ok[f, p, j] else [None, None, None]
            row.append(flat)
        out.append(row)
    return out


def viewer_payload(result: Pose3DSequence) -> dict:
    """Everything the page needs, JSON-ready."""
    cam = viewer_camera(result.meta or {})
    return {
        "fps": float(result.fps) if math.isfinite(float(result.fps)) else 0.0,
        "frames": result.num_frames,
        "persons": result.num_persons,
        "track_ids": [int(t) for t in result.track_ids],
        "joint_names": list(H36M_NAMES),
        "joint_parents": [max(int(p), 0) for p in H36M_PARENTS],
        "camera": asdict(cam) if cam else None,
        "joints": _joints_mm(result.joints),
    }


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def viewer_html(result: Pose3DSequence, title: str = "hgmamba 3D poses") -> str:
    """The whole page as one string: template + data + script, no external references."""
    data = json.dumps(viewer_payload(result), separators=(",", ":"), allow_nan=False)
    data = data.replace("</", "<\\/")  # can't close the <script> element early
    info = (
        f"{html.escape(title)} · {result.num_frames} frames · {result.num_persons} person(s)"
        f" · HGMamba-{html.escape(result.variant or '?')} · drag to orbit, wheel to zoom"
    )
    page = _asset("viewer.html")
    for key, value in (("__TITLE__", html.escape(title)), ("__INFO__", info)):
        page = page.replace(key, value)
    # the script and data last, so their text is never searched for placeholders
    head, tail = page.split("__DATA__")
    tail_a, tail_b = tail.split("__SCRIPT__")
    return head + data + tail_a + _asset("viewer.js") + tail_b


def write_viewer(result: Pose3DSequence, path: str | os.PathLike, title: str | None = None) -> Path:
    """Write pose3d.html (atomically) and return its path."""
    path = Path(path)
    write_text_atomic(path, viewer_html(result, title or default_title(result, path)))
    return path


def default_title(result: Pose3DSequence, path: Path) -> str:
    """The input's stem (the folder may still be lift's hidden staging folder), else the folder."""
    source = str((result.meta or {}).get("source") or "")
    if source:
        return Path(source).stem
    return path.parent.name if not path.parent.name.startswith(".") else "hgmamba"


def rebuild_viewer(result_dir: str | os.PathLike) -> Path:
    """RESULT_DIR/pose3d.html from RESULT_DIR/pose3d.npy (+ json metadata), for `hgmamba view`."""
    from hgmamba_core.export import read_pose3d

    d = Path(result_dir)
    return write_viewer(read_pose3d(d), d / "pose3d.html", title=d.resolve().name)
