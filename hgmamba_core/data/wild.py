"""The "wild" training recipe: windows made per batch from world 3D, not from fixed camera clips.

Each training window picks one H36M sequence (train subjects only) and a start frame, then a
source: a virtual camera (`virtual_camera.sample_camera`, pinhole), one of the subject's four
real cameras (with their distortion) with projected 2D, or a real camera with its Stacked
Hourglass detections. Projected 2D is given detector-like noise (`augment.detector_like_2d`)
with probability `noise_p`; SH windows get confidences from their error to the projected GT
(the same confidence model). With probability `derive_p` the joints a COCO front end
synthesizes are re-made by `skeleton.synthesize_derived_joints`, and with `stress_p` up to
20 % of the joints are displaced with confidence 0. Then flip (after synthesis: synthesis is
left/right symmetric, so it commutes with the flip). Targets: root-relative camera-frame 3D in
metres, like the existing pipeline.

Determinism: the window order is a pure function of (seed, epoch) and each batch's
augmentation of (seed, epoch, step), so `--resume` continues exactly.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hgmamba_core.camera import Camera, load_h36m_cameras
from hgmamba_core.data.augment import (
    DetectorNoise,
    confidence_from_error,
    detector_like_2d,
    displace_joints,
    person_size,
)
from hgmamba_core.data.h36m import FILE_3D, FILE_CAMERAS, FILE_SH
from hgmamba_core.data.virtual_camera import (
    CameraRanges,
    project_view,
    root_relative,
    sample_camera,
)
from hgmamba_core.data.windows import Batch, flip_poses, window_frames
from hgmamba_core.errors import HGMambaError
from hgmamba_core.poses import normalize_screen
from hgmamba_core.skeleton import mpii_to_h36m, synthesize_derived_joints

H36M_FPS = 50.0


@dataclass(frozen=True)
class WildRecipe:
    """Shares of the per-window augmentations (each a `hgmamba train` flag).

    virtual_p: windows through a virtual camera (else a real H36M camera); sh_p: of the
    real-camera windows, those that use SH detections (0 unless --two-d has sh); noise_p:
    projected windows given detector-like noise; derive_p: windows with re-synthesized derived
    joints; stress_p: windows with displaced confidence-0 joints.
    """

    virtual_p: float = 0.7
    sh_p: float = 0.5
    noise_p: float = 0.8
    derive_p: float = 0.75
    stress_p: float = 0.1
    cameras: CameraRanges = field(default_factory=CameraRanges)
    noise: DetectorNoise = field(default_factory=DetectorNoise)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cameras"]["sizes"] = [list(s) for s in self.cameras.sizes]
        return d


@dataclass
class WorldStore:
    """World 3D of every sequence (flat (M, 17, 3) float32 + offsets), their subjects' cameras,
    and the SH detections (H36M-17 px) per (sequence, camera) where present."""

    world: np.ndarray
    offsets: np.ndarray
    names: list[str]
    subjects: list[str]
    cameras: dict[str, list[Camera]]
    sh: dict[tuple[int, int], np.ndarray]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def load_world_store(
    data_dir: str | os.PathLike, subjects: Iterable[str], with_sh: bool = True
) -> WorldStore:
    """Read our H36M files: world 3D of `subjects`, their cameras and (optionally) SH 2D."""
    folder = Path(data_dir)
    for name in (FILE_3D, FILE_CAMERAS) + ((FILE_SH,) if with_sh else ()):
        if not (folder / name).is_file():
            raise HGMambaError(f"the wild recipe needs {folder / name} (our H36M files)")
    cams = load_h36m_cameras(folder / FILE_CAMERAS)
    subjects = [s.strip() for s in subjects if s.strip()]
    worlds, names, subs = [], [], []
    with np.load(folder / FILE_3D, allow_pickle=False) as z:
        for key in sorted(z.files):
            s = key.partition("/")[0]
            if s in subjects:
                worlds.append(z[key].astype(np.float32))
                names.append(key)
                subs.append(s)
    if not worlds:
        raise HGMambaError(f"no Human3.6M sequences for subjects {','.join(subjects)}")
    sh: dict[tuple[int, int], np.ndarray] = {}
    if with_sh:
        with np.load(folder / FILE_SH, allow_pickle=False) as z:
            have = set(z.files)
            for i, key in enumerate(names):
                for c, cam in enumerate(cams[subs[i]]):
                    k = f"{key}.{cam.id}"
                    if k in have:
                        det = z[k]
                        if det.shape[0] == worlds[i].shape[0]:
                            sh[(i, c)] = mpii_to_h36m(det)
    lengths = np.array([len(w) for w in worlds], np.int64)
    return WorldStore(
        world=np.concatenate(worlds), offsets=np.concatenate([[0], np.cumsum(lengths)]),
        names=names, subjects=subs, cameras={s: cams[s] for s in set(subs)}, sh=sh,
    )  # fmt: skip


def screen_input(kp: np.ndarray, conf: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pixels (T, 17, 2) + confidence (T, 17) -> the lifter's (T, 17, 3) input."""
    xy = normalize_screen(kp, *size)
    return np.concatenate([xy, np.asarray(conf, np.float32)[..., None]], -1).astype(np.float32)


def make_window(
    world: np.ndarray,
    rng: np.random.Generator,
    recipe: WildRecipe,
    real_cameras: list[Camera],
    sh: list[np.ndarray | None] | None = None,
    fps: float = H36M_FPS,
) -> tuple[np.ndarray, np.ndarray]:
    """One training window: world 3D (T, 17, 3) -> (input (T, 17, 3), target (T, 17, 3)).

    `sh[c]` holds this window's SH detections (T, 17, 2) px for real camera c (None: none).
    """
    if rng.random() < recipe.virtual_p:
        cam = sample_camera(world, rng, recipe.cameras).camera
        c = -1
    else:
        c = int(rng.integers(len(real_cameras)))
        cam = real_cameras[c]
    view = project_view(world, cam)
    target = root_relative(view.joints_cam)
    kp = view.keypoints
    conf = np.ones(kp.shape[:-1], np.float32)
    use_sh = c >= 0 and sh is not None and sh[c] is not None and rng.random() < recipe.sh_p
    if use_sh:
        det = sh[c]  # type: ignore[index]
        err = np.linalg.norm(det - kp, axis=-1) / person_size(kp)
        conf = confidence_from_error(err, rng.uniform(*recipe.noise.conf_top))
        kp = det
    elif rng.random() < recipe.noise_p:
        noisy = detector_like_2d(kp, rng, recipe.noise, fps)
        kp, conf = noisy.keypoints, noisy.confidence
    if rng.random() < recipe.derive_p:
        kp, conf = synthesize_derived_joints(kp, conf)
    if rng.random() < recipe.stress_p:
        kp, conf = displace_joints(kp, conf, rng, share=rng.uniform(0.0, 0.2))
    return screen_input(kp, conf, view.size), target


class WildWindows:
    """Training windows of the wild recipe; same interface as windows.TrainWindows.

    An epoch has ceil(N / window_stride) windows per sequence and real camera (4x the
    sequences, so an epoch is as long as the h36m recipe's); starts from a random per-sequence
    phase per epoch.
    """

    def __init__(
        self,
        store: WorldStore,
        recipe: WildRecipe,
        length: int,
        window_stride: int,
        frame_stride: int = 1,
        flip: bool = True,
        views_per_sequence: int = 4,
    ) -> None:
        if length < 1 or window_stride < 1 or frame_stride < 1:
            raise HGMambaError("window length and strides must be >= 1")
        self.store, self.recipe = store, recipe
        self.length, self.window_stride = int(length), int(window_stride)
        self.frame_stride, self.flip = int(frame_stride), flip
        per = -(-store.lengths // self.window_stride)
        self._per_seq = per * int(views_per_sequence)
        self.num_windows = int(self._per_seq.sum())

    def steps_per_epoch(self, batch_size: int) -> int:
        return self.num_windows // batch_size

    def _epoch_plan(self, epoch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([int(seed), int(epoch), 1])
        lengths = self.store.lengths
        seq_of = np.repeat(np.arange(len(lengths)), self._per_seq)
        first = np.concatenate([[0], np.cumsum(self._per_seq)[:-1]])
        i = np.arange(self.num_windows) - np.repeat(first, self._per_seq)
        phase = rng.integers(0, self.window_stride, size=len(lengths))
        start = (phase[seq_of] + i * self.window_stride) % lengths[seq_of]
        order = rng.permutation(self.num_windows)
        return seq_of[order], start[order]

    def batches(
        self, epoch: int, seed: int, batch_size: int, start_step: int = 0
    ) -> Iterator[Batch]:
        """Batches of one epoch, from `start_step` on (for resuming mid-epoch)."""
        seq_of, start = self._epoch_plan(epoch, seed)
        st = self.store
        for step in range(start_step, self.steps_per_epoch(batch_size)):
            rng = np.random.default_rng([int(seed), int(epoch), int(step), 2])
            sel = slice(step * batch_size, (step + 1) * batch_size)
            xs, ys = [], []
            for s, a in zip(seq_of[sel], start[sel], strict=True):
                frames = window_frames(a, self.length, st.lengths[s], self.frame_stride)
                world = st.world[st.offsets[s] + frames]
                cams = st.cameras[st.subjects[s]]
                sh = [
                    st.sh[(int(s), c)][frames] if (int(s), c) in st.sh else None
                    for c in range(len(cams))
                ]
                x, y = make_window(world, rng, self.recipe, cams, sh, H36M_FPS / self.frame_stride)
                if self.flip and rng.random() < 0.5:
                    x, y = flip_poses(x), flip_poses(y)
                xs.append(x)
                ys.append(y)
            yield Batch(np.stack(xs), np.stack(ys))
