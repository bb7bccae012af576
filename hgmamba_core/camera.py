"""Human3.6M camera model: world <-> camera frame and projection with lens distortion.

Conventions (see ../shared/data/h36m/README.md): `X_cam = R (X_world - T)` with R the
world->camera rotation and T the camera centre in world metres; camera frame x right, y down,
z forward. Projection is the H36M / 3d-pose-baseline radial + tangential model, whose tangential
coefficients `p` are NOT OpenCV's (p1, p2) order.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hgmamba_core.errors import HGMambaError


@dataclass(frozen=True)
class Camera:
    """One calibrated camera: intrinsics (pixels), distortion, extrinsics (metres)."""

    id: str
    res: tuple[int, int]  # (width, height) in pixels
    f: np.ndarray  # (2,) focal lengths fx, fy in pixels
    c: np.ndarray  # (2,) principal point cx, cy in pixels
    k: np.ndarray  # (3,) radial k1, k2, k3
    p: np.ndarray  # (2,) tangential, H36M order
    R: np.ndarray  # (3, 3) world -> camera rotation
    T: np.ndarray  # (3,) camera centre in world coordinates, metres

    @classmethod
    def from_dict(cls, d: dict) -> Camera:
        def arr(key: str, shape: tuple[int, ...]) -> np.ndarray:
            a = np.asarray(d[key], dtype=np.float64).reshape(shape)
            if not np.all(np.isfinite(a)):
                raise HGMambaError(f"camera {d.get('id', '?')}: non-finite '{key}'")
            return a

        try:
            return cls(
                id=str(d["id"]), res=(int(d["res"][0]), int(d["res"][1])),
                f=arr("f", (2,)), c=arr("c", (2,)), k=arr("k", (3,)), p=arr("p", (2,)),
                R=arr("R", (3, 3)), T=arr("T", (3,)),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as e:
            raise HGMambaError(f"bad camera entry ({type(e).__name__}: {e})") from None


def world_to_camera(x_world: np.ndarray, cam: Camera) -> np.ndarray:
    """(..., 3) world metres -> camera frame metres: R (X - T)."""
    x = np.asarray(x_world)
    out = (x.astype(np.float64) - cam.T) @ cam.R.T
    return out.astype(x.dtype if x.dtype.kind == "f" else np.float64)


def camera_to_world(x_cam: np.ndarray, cam: Camera) -> np.ndarray:
    """Inverse of world_to_camera: R^T X_cam + T."""
    x = np.asarray(x_cam)
    out = x.astype(np.float64) @ cam.R + cam.T
    return out.astype(x.dtype if x.dtype.kind == "f" else np.float64)


def project(x_cam: np.ndarray, cam: Camera) -> np.ndarray:
    """Camera-frame points (..., 3) -> pixels (..., 2) with H36M radial + tangential distortion.

    x = X[:2]/X[2]; r2 = |x|^2; radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3;
    tan = p0 x1 + p1 x0; xd = x (radial + tan) + [p1, p0] r2; uv = f xd + c.
    """
    x_cam = np.asarray(x_cam)
    xc = x_cam.astype(np.float64)
    x = xc[..., :2] / xc[..., 2:3]
    r2 = np.sum(x * x, axis=-1, keepdims=True)
    k1, k2, k3 = cam.k
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    tan = cam.p[0] * x[..., 1:2] + cam.p[1] * x[..., 0:1]
    xd = x * (radial + tan) + np.array([cam.p[1], cam.p[0]]) * r2
    uv = cam.f * xd + cam.c
    return uv.astype(x_cam.dtype if x_cam.dtype.kind == "f" else np.float64)


def load_h36m_cameras(path: str | os.PathLike) -> dict[str, list[Camera]]:
    """Read h36m_cameras.json: subject -> its 4 cameras in cameras.h5 order."""
    p = Path(path)
    if not p.is_file():
        raise HGMambaError(f"camera file not found: {p}")
    try:
        raw = json.loads(p.read_text())
        subjects = raw["subjects"]
        return {s: [Camera.from_dict(c) for c in cams] for s, cams in subjects.items()}
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise HGMambaError(f"cannot read cameras from {p}: {type(e).__name__}: {e}") from None
