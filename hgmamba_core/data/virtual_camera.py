"""Virtual cameras: view world-frame 3D motion (z up, metres) from cameras H36M never had.

H36M's four cameras are near-horizontal and about 4-6 m from the subject, so a lifter trained
on them alone sees one narrow band of views; phone and CCTV footage looks down 30-60 degrees,
from 2 to 15 m, with any focal length and in portrait too. This module samples such cameras and
projects world 3D through them, giving the 2D input and camera-frame 3D target of one window.

Public API (kept stable; the world-frame benchmark imports it):

- `CameraRanges` (frozen dataclass): the sampling ranges (pitch, yaw, roll, distance, focal
  length as a fraction of the image width, image sizes, how far off-centre the person may sit).
- `sample_camera(world, rng, ranges=CameraRanges()) -> VirtualCamera`: one random camera
  that sees the whole window `world` (T, 17, 3) inside its image.
- `look_at_camera(target, yaw_deg, pitch_deg, roll_deg, distance_m, focal_px, size,
  offset_px=(0, 0)) -> Camera`: the deterministic pinhole camera behind `sample_camera`.
- `project_view(world, cam) -> View`: pixels (T, 17, 2), camera-frame 3D (T, 17, 3) in metres
  (not root-relative; `root_relative` subtracts the pelvis like the existing pipeline), size.
- `camera_pitch_deg(cam)`: how far the optical axis points below the horizon (world z up).

Cameras are `hgmamba_core.camera.Camera` objects with zero distortion, so `camera.project`
and `camera.world_to_camera` (X_cam = R (X_world - T); x right, y down, z forward) apply
unchanged, and real H36M cameras (with distortion) go through `project_view` the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hgmamba_core.camera import Camera, project, world_to_camera
from hgmamba_core.skeleton import H36M_ROOT

# (width, height) in pixels: landscape, portrait and square frames of common devices.
IMAGE_SIZES: tuple[tuple[int, int], ...] = (
    (1920, 1080), (1280, 720), (1080, 1920), (720, 1280), (1000, 1000), (640, 480), (480, 640),
)  # fmt: skip
WORLD_UP = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class CameraRanges:
    """Where virtual cameras come from. Angles in degrees; pitch > 0 looks down.

    fit: the person's box over the whole window must fill at most this share of the image
    width and height (the camera backs off until it does); off_centre: how much of the free
    margin the person's centre may move off the image centre (0 = always centred).
    """

    pitch_deg: tuple[float, float] = (-10.0, 60.0)
    yaw_deg: tuple[float, float] = (-180.0, 180.0)
    roll_deg: tuple[float, float] = (-5.0, 5.0)
    distance_m: tuple[float, float] = (2.5, 15.0)
    focal_frac: tuple[float, float] = (0.5, 1.5)
    sizes: tuple[tuple[int, int], ...] = IMAGE_SIZES
    fit: float = 0.9
    off_centre: float = 0.8


@dataclass(frozen=True)
class VirtualCamera:
    """A sampled camera and the parameters it was built from (for bucketing results by pitch)."""

    camera: Camera
    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    distance_m: float
    focal_px: float


@dataclass(frozen=True)
class View:
    """One window seen by one camera: keypoints (T, 17, 2) px, joints_cam (T, 17, 3) m, size."""

    keypoints: np.ndarray
    joints_cam: np.ndarray
    size: tuple[int, int]


def _rotation_about(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues: the 3x3 rotation by `angle` radians about the unit vector `axis`."""
    a = axis / max(np.linalg.norm(axis), 1e-12)
    k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


def look_at_rotation(forward: np.ndarray, roll_deg: float = 0.0) -> np.ndarray:
    """World->camera rotation whose z axis is `forward`, x level with the floor, then rolled.

    Rows are the camera's x (right), y (down), z (forward) axes in world coordinates.
    """
    f = np.asarray(forward, np.float64)
    f = f / np.linalg.norm(f)
    right = np.cross(-WORLD_UP, f)
    if np.linalg.norm(right) < 1e-9:  # looking straight up or down: any level x will do
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(f, right)
    r = np.stack([right, down, f])
    roll = np.deg2rad(roll_deg)
    rz = np.array(
        [[np.cos(roll), -np.sin(roll), 0.0], [np.sin(roll), np.cos(roll), 0.0], [0.0, 0.0, 1.0]]
    )
    return rz @ r


def look_at_camera(
    target: np.ndarray,
    yaw_deg: float,
    pitch_deg: float,
    roll_deg: float,
    distance_m: float,
    focal_px: float,
    size: tuple[int, int],
    offset_px: tuple[float, float] = (0.0, 0.0),
    cam_id: str = "virtual",
) -> Camera:
    """A distortion-free pinhole camera `distance_m` from `target` (world metres, z up).

    It sits at azimuth `yaw_deg` around the target and `pitch_deg` above it (positive = looking
    down at the target), rolled by `roll_deg` about its axis, principal point at the image
    centre; `offset_px` turns it so that the target appears that many pixels right/down of the
    centre (an off-centre person, as a fixed real camera would see one).
    """
    yaw, pitch = np.deg2rad(yaw_deg), np.deg2rad(pitch_deg)
    # unit vector from the target to the camera centre
    back = np.array([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)])
    centre = np.asarray(target, np.float64) + distance_m * back
    r = look_at_rotation(-back, roll_deg)
    w, h = int(size[0]), int(size[1])
    ox, oy = float(offset_px[0]), float(offset_px[1])
    if ox or oy:
        # camera-frame ray through the wanted pixel; rotate the camera so the target lies on it
        want = np.array([ox / focal_px, oy / focal_px, 1.0])
        want /= np.linalg.norm(want)
        z = np.array([0.0, 0.0, 1.0])
        axis = np.cross(z, want)
        angle = float(np.arccos(np.clip(want @ z, -1.0, 1.0)))
        r = _rotation_about(axis, angle) @ r
    return Camera(
        id=cam_id, res=(w, h), f=np.array([focal_px, focal_px], np.float64),
        c=np.array([w / 2.0, h / 2.0]), k=np.zeros(3), p=np.zeros(2), R=r, T=centre,
    )  # fmt: skip


def project_view(world: np.ndarray, cam: Camera) -> View:
    """World 3D (T, 17, 3) -> View: pixels through `cam` (its distortion too) + camera-frame 3D."""
    x_cam = world_to_camera(np.asarray(world, np.float64), cam)
    uv = project(x_cam, cam)
    return View(uv.astype(np.float32), x_cam.astype(np.float32), cam.res)


def root_relative(joints_cam: np.ndarray) -> np.ndarray:
    """(..., 17, 3) camera-frame 3D minus the root joint (pelvis), the lifter's target."""
    j = np.asarray(joints_cam, np.float32)
    return j - j[..., H36M_ROOT : H36M_ROOT + 1, :]


def camera_pitch_deg(cam: Camera) -> float:
    """Angle of the optical axis below the horizon in degrees (world z up; > 0 looks down)."""
    forward = cam.R[2]
    return float(np.rad2deg(np.arcsin(np.clip(-forward @ WORLD_UP, -1.0, 1.0))))


def _box(uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = uv.reshape(-1, 2)
    return flat.min(0), flat.max(0)


def sample_camera(
    world: np.ndarray, rng: np.random.Generator, ranges: CameraRanges = CameraRanges()
) -> VirtualCamera:
    """A random camera aimed at the window's mean pelvis that keeps the person in view.

    Pitch, yaw, roll, distance, focal fraction and image size are drawn uniformly from
    `ranges`; if the person's box over the whole window would exceed `ranges.fit` of the image,
    the camera backs off (distance grows) until it fits. The person is then moved off-centre by
    a random share of the free margin. Pure function of (world, rng state).
    """
    world = np.asarray(world, np.float64)
    target = world[:, H36M_ROOT].mean(0)
    yaw = float(rng.uniform(*ranges.yaw_deg))
    pitch = float(rng.uniform(*ranges.pitch_deg))
    roll = float(rng.uniform(*ranges.roll_deg))
    dist = float(rng.uniform(*ranges.distance_m))
    size = ranges.sizes[int(rng.integers(len(ranges.sizes)))]
    focal = float(rng.uniform(*ranges.focal_frac)) * size[0]
    w, h = size
    for _ in range(4):
        cam = look_at_camera(target, yaw, pitch, roll, dist, focal, size)
        x_cam = world_to_camera(world, cam)
        near = float(x_cam[..., 2].min())
        if near < 0.5:  # a joint behind / too close to the lens: back off, then measure again
            dist += 0.5 - near + 0.5
            continue
        lo, hi = _box(project(x_cam, cam))
        need = max((hi[0] - lo[0]) / (ranges.fit * w), (hi[1] - lo[1]) / (ranges.fit * h))
        if need <= 1.0:
            break
        dist *= need * 1.05
    cam = look_at_camera(target, yaw, pitch, roll, dist, focal, size)
    lo, hi = _box(project(world_to_camera(world, cam), cam))
    centre = 0.5 * (lo + hi) - np.array([w / 2.0, h / 2.0])
    slack = np.maximum(0.5 * (np.array([w, h]) - (hi - lo)) - np.abs(centre), 0.0)
    shift = rng.uniform(-1.0, 1.0, 2) * ranges.off_centre * slack
    if np.any(shift != 0):
        cam = look_at_camera(target, yaw, pitch, roll, dist, focal, size, tuple(shift))
    return VirtualCamera(cam, yaw, pitch, roll, dist, focal)
