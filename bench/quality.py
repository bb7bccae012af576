"""3D plausibility on a real clip, ours beside MediaPipe Pose, on the same frames in one run.

Real videos come without 3D ground truth, so this measures what a viewer sees and what a rigid
body implies, on the person both methods follow (MediaPipe tracks one person; frames where its
hips are not on our main person's are left out):
- bone CV: a limb bone's length over time, std / mean (upper arms, forearms, thighs, shins;
  median over the 8); a real body's bones do not change;
- L/R: |left - right| / mean of each limb pair per frame (median); people are near-symmetric;
- accel: mean acceleration of the 12 limb joints about the hips, m/s^2 at the clip's rate, each
  method's skeleton scaled to the truth's limb size (jitter adds to it, motion needs some);
- trunk: median angle of the pelvis -> thorax line from world up (ours: the world frame's z;
  MediaPipe, whose world landmarks keep the camera's axes: the up our world stage estimated
  for this clip, so both are measured against the same vertical); wobble: its median angle from
  the clip's mean trunk direction.
The truth row is Human3.6M S9/S11 walking (GT 3D) at the clip's frame rate: real walking's
numbers (bone CV and L/R near 0, the accel that motion alone gives, an upright trunk).

    python bench/quality.py --mediapipe-python /work/mp_venv/bin/python [--frames 150] [--tracks 3]
    python bench/quality.py --mediapipe-python PY --clip my.mp4 other.mp4
    python bench/quality.py --checkpoints assets/weights/hgmamba_xs_h36m.pt runs/x/best.pt

The clips are bench/lift.py's `--clip single` kind (one walker of ../shared/media/vtest.avi
followed by a window 5x upscaled to 720p), one per long track, loneliest first. MediaPipe
(bench/mediapipe_pose.py) runs in its own venv (`pip install mediapipe==0.10.14`); without
--mediapipe-python only ours and the truth are printed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from hgmamba_core.skeleton import (  # noqa: E402
    H36M_LEFT,
    H36M_LIMB_BONES,
    H36M_PELVIS,
    H36M_RIGHT,
    H36M_THORAX,
    mediapipe_to_h36m,
)

H36M_3D = REPO.parent / "shared" / "data" / "h36m" / "h36m_3d_17j.npz"
H36M_FPS = 50.0
TRUTH_SEQS = ("S9/Walking", "S9/Walking 1", "S11/Walking", "S11/Walking 1")
LIMBS = tuple(H36M_LEFT + H36M_RIGHT)
BONES = H36M_LIMB_BONES


def bone_lengths(j: np.ndarray) -> np.ndarray:
    """(F, 17, 3) -> (F, 8) limb bone lengths."""
    return np.stack([np.linalg.norm(j[:, c] - j[:, p], axis=-1) for c, p in BONES], axis=1)


def _angle_deg(v: np.ndarray, ref: np.ndarray) -> np.ndarray:
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    return np.degrees(np.arccos(np.clip(v @ (ref / np.linalg.norm(ref)), -1.0, 1.0)))


def plausibility(
    j: np.ndarray, keep: np.ndarray, fps: float, up: np.ndarray, limb_size: float
) -> dict:
    """The numbers of one method on (F, 17, 3) metres over the frames `keep` (F,) bool; the
    acceleration only where three consecutive frames are kept."""
    triple = keep[2:] & keep[1:-1] & keep[:-2]
    acc = np.diff(j, n=2, axis=0)[triple]  # (n, 17, 3)
    j = j[keep]
    bones = bone_lengths(j)
    half = len(BONES) // 2
    left, right = bones[:, :half], bones[:, half:]
    scale = limb_size / np.median(bones.sum(1))
    acc = np.linalg.norm(acc[:, LIMBS] - acc[:, [H36M_PELVIS]], axis=-1) * scale * fps**2
    trunk = j[:, H36M_THORAX] - j[:, H36M_PELVIS]
    mean_dir = (trunk / np.linalg.norm(trunk, axis=-1, keepdims=True)).mean(0)
    return {
        "frames": len(j),
        "bone_cv": 100 * float(np.median(bones.std(0) / bones.mean(0))),
        "lr": 100 * float(np.median(np.abs(left - right) / (0.5 * (left + right)))),
        "accel": float(acc.mean()),
        "trunk": float(np.median(_angle_deg(trunk, up))),
        "wobble": float(np.median(_angle_deg(trunk, mean_dir))),
    }


def truth(fps: float) -> list[np.ndarray]:
    """Human3.6M walking GT (z up) resampled to `fps`: one (F, 17, 3) per sequence."""
    data = np.load(H36M_3D, allow_pickle=True)
    step = max(1, round(H36M_FPS / fps))
    return [data[s][::step].astype(np.float64) for s in TRUTH_SEQS if s in data]


def run_ours(
    clip: Path, checkpoint: Path | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Our world-frame 3D, 2D and the estimated up (camera coordinates) of the main person."""
    from hgmamba_core import HGMamba
    from hgmamba_core.api import camera_from_meta

    res = HGMamba(str(checkpoint) if checkpoint else "xs").lift(clip, person="main", progress=False)
    cam = camera_from_meta(res.pose3d.meta)
    up = np.asarray(cam.up_cam if hasattr(cam, "up_cam") else cam["up_cam"], np.float64)
    return res.poses3d[:, 0].astype(np.float64), res.poses2d[:, 0], up, res.fps


def run_mediapipe(clip: Path, python: str, tmp: Path) -> dict[str, np.ndarray]:
    """bench/mediapipe_pose.py in the given interpreter, landmarks saved to an npz."""
    out = tmp / "mediapipe.npz"
    script = REPO / "bench" / "mediapipe_pose.py"
    r = subprocess.run(
        [python, str(script), str(clip), "--save", str(out)], capture_output=True, text=True
    )
    if r.returncode != 0:
        sys.exit(f"MediaPipe failed: {r.stderr.strip().splitlines()[-1:]}")
    return dict(np.load(out))


def same_person(mp_image: np.ndarray, ours_2d: np.ndarray) -> np.ndarray:
    """(F,) MediaPipe's hips within 0.3 of our person's 2D height of our pelvis."""
    mp_hips = np.asarray(mediapipe_to_h36m(mp_image)[0])[:, H36M_PELVIS]
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # frames without our person: all NaN
        height = np.nanmax(ours_2d[..., 1], -1) - np.nanmin(ours_2d[..., 1], -1)
        d = np.linalg.norm(mp_hips - ours_2d[:, H36M_PELVIS], axis=-1)
        return d < 0.3 * height


def compare_clip(
    clip: Path, mp_python: str | None, tmp: Path, others: tuple[Path, ...] = ()
) -> dict[str, dict]:
    """Every method's numbers on one clip (and the truth at its frame rate); prints a header.
    `others`: more of our checkpoints, on the frames of the comparison (the same 2D)."""
    ours3d, ours2d, up_cam, fps = run_ours(clip)
    have = np.isfinite(ours3d).all((1, 2))
    both, mp_found, mp_all = have, 0, None
    if mp_python:
        mp = run_mediapipe(clip, mp_python, tmp)
        mp3d = np.asarray(mediapipe_to_h36m(mp["world"])[0], np.float64)
        mp_found = int(np.isfinite(mp3d).all((1, 2)).sum())
        mp_all = np.full_like(ours3d, np.nan)
        n = min(len(mp3d), len(ours3d))
        mp_all[:n] = mp3d[:n]
        both = have & np.isfinite(mp_all).all((1, 2))
        both[:n] &= same_person(mp["image"][:n], ours2d[:n])
    gt = truth(fps)
    limb_size = float(np.median(np.concatenate([bone_lengths(g).sum(1) for g in gt])))
    z_up = np.array([0.0, 0.0, 1.0])
    runs = [plausibility(g, np.ones(len(g), bool), fps, z_up, limb_size) for g in gt]
    rows = {TRUTH: {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}}
    rows[TRUTH]["frames"] = sum(r["frames"] for r in runs)
    print(
        f"\nclip {clip.name}: {len(ours3d)} frames at {fps:g} fps; ours {int(have.sum())} with a "
        f"pose" + (f", MediaPipe {mp_found}" if mp_python else "")
        + f"; compared on {int(both.sum())} frames both have (same person)"
    )  # fmt: skip
    if both.sum() >= MIN_FRAMES:
        rows[OURS] = plausibility(ours3d, both, fps, z_up, limb_size)
        if mp_all is not None:
            rows[MEDIAPIPE] = plausibility(mp_all, both, fps, up_cam, limb_size)
        for ckpt in others:
            other = run_ours(clip, ckpt)[0]
            keep = both & np.isfinite(other).all((1, 2))
            rows[f"HGMamba-XS {ckpt.stem}"] = plausibility(other, keep, fps, z_up, limb_size)
    if both.sum() < have.sum() and have.sum() >= MIN_FRAMES:
        rows[OURS_ALL] = plausibility(ours3d, have, fps, z_up, limb_size)
    return rows


TRUTH, OURS, OURS_ALL = "truth (H36M walking)", "HGMamba-XS (ours)", "HGMamba-XS, all its frames"
MEDIAPIPE = "MediaPipe Pose (full)"
MIN_FRAMES = 10  # fewer frames in common: the clip's rows are left out
COLUMNS = ("bone_cv", "lr", "accel", "trunk", "wobble")


def print_rows(rows: dict[str, dict]) -> None:
    print(
        f"{'method':28s} {'frames':>6s} {'bone CV %':>9s} {'L/R %':>6s} {'accel m/s2':>10s} "
        f"{'trunk deg':>9s} {'wobble deg':>10s}"
    )
    for name, r in rows.items():
        print(
            f"{name:28s} {r['frames']:6d} {r['bone_cv']:9.2f} {r['lr']:6.2f} {r['accel']:10.2f}"
            f" {r['trunk']:9.1f} {r['wobble']:10.1f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=150, help="frames of the source to follow")
    ap.add_argument("--tracks", type=int, default=3, help="single-person clips (long tracks)")
    ap.add_argument("--mediapipe-python", default=None, help="interpreter with mediapipe")
    ap.add_argument("--clip", type=Path, nargs="*", default=None, help="these videos instead")
    ap.add_argument(
        "--checkpoints", type=Path, nargs="*", default=(), help="more of our weights to compare"
    )
    args = ap.parse_args()
    from lift import make_single_clips, source_video

    per_clip = []
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        clips = args.clip or make_single_clips(source_video(), tmp, args.frames, args.tracks)
        for clip in clips:
            rows = compare_clip(clip, args.mediapipe_python, tmp, tuple(args.checkpoints))
            print_rows(rows)
            per_clip.append(rows)
    if len(per_clip) > 1:
        names = dict.fromkeys(k for rows in per_clip for k in rows)
        print(f"\nmedian over the {len(per_clip)} clips (frames: summed)")
        summary = {}
        for name in names:
            have = [rows[name] for rows in per_clip if name in rows]
            summary[name] = {c: float(np.median([r[c] for r in have])) for c in COLUMNS}
            summary[name]["frames"] = sum(r["frames"] for r in have)
        summary[TRUTH]["frames"] = per_clip[0][TRUTH]["frames"]
        print_rows(summary)


if __name__ == "__main__":
    main()
