"""The world frame against the truth: gravity, floor, camera height, root trajectory.

Clips are real Human3.6M S9/S11 3D (one to three people in one scene) seen through virtual
cameras (hgmamba_core.data.virtual_camera: pitch 0-60 degrees, roll +-5, 3-15 m, focal
0.6-1.4 x the image width, landscape and portrait) with detector-like 2D noise and confidences
(hgmamba_core.data.augment). Two settings, in one run:
(a) geometry alone: the world stage gets the true camera-frame 3D (true size) plus the noisy 2D;
(b) end to end: the noisy 2D goes through the stages of `hgmamba lift --keypoints` (the
    keypoint front end with its cleaning, the shipped lifter, the world stage) in-process, so
    the lifter runs once per clip for every world rule.
Every rule sees the true focal length (as if the video carried it in its metadata).

Per clip and rule: gravity error (degrees between the estimated and true vertical), floor
drift (the lowest ankle's 95th-5th percentile height spread minus the truth's, worst person),
camera height error (% of the true height), root error (mean pelvis distance to the truth in
the camera-aligned world). Rules: auto (the shipped rule), auto (before) (the rule of before
2026-12-01), fixed 10 degrees, and for the choice of the combination rule: each new part left
out (reorientation, the floor-tilt cap, the rulers), cues alone and in pairs (floor fit, image
cues = 2D verticals + rulers, body-up prior), other prior widths, floor contact on stance
frames only, and a guessed focal length.

    python bench/world.py                   # both settings, 14 clips
    python bench/world.py --no-e2e          # geometry alone (seconds)
    python bench/world.py --cache lifted.npz  # keep / reuse the lifted poses of (b)
    python bench/world.py --seed 100        # other cameras and noise (the rule's holdout)
    python bench/world.py --checkpoint runs/x/best.pt --cache other.npz  # other weights
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hgmamba_core.camera import world_to_camera  # noqa: E402
from hgmamba_core.data.augment import detector_like_2d  # noqa: E402
from hgmamba_core.data.virtual_camera import CameraRanges, sample_camera  # noqa: E402
from hgmamba_core.world import WorldConfig, place_in_world, rotation_from_up  # noqa: E402
from hgmamba_core.world.floor import angle_deg  # noqa: E402
from hgmamba_core.world.frame import standing_height  # noqa: E402

H36M = REPO.parent / "shared" / "data" / "h36m" / "h36m_3d_17j.npz"
FPS = 25.0
# (sequences in one scene, pitch); several people share the floor in the last clips.
CLIPS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("S9/Walking",), 0.0),
    (("S11/Walking 1",), 15.0),
    (("S9/WalkDog",), 30.0),
    (("S11/WalkTogether",), 45.0),
    (("S9/Walking 1",), 60.0),
    (("S11/WalkDog 1",), 22.0),
    (("S9/Directions",), 35.0),
    (("S11/Greeting 2",), 50.0),
    (("S9/Purchases",), 10.0),
    (("S11/Phoning 2",), 40.0),
    (("S11/Sitting",), 30.0),
    (("S9/Walking", "S11/Walking 1"), 25.0),
    (("S9/WalkTogether", "S11/Directions", "S9/Phoning"), 40.0),
    (("S11/WalkTogether 1", "S9/Walking 1"), 55.0),
)
# the rule before 2026-12-01 (no reorientation, uncapped floor fit, no rulers, contact factors
# clipped to 0.7-1.4 and tested against the clip-wide median), for before/after in one run
BEFORE: dict = {
    "reorient": False, "plane_sigma_deg": 0.0, "ruler_weight": 0.0,
    "contact_range": (0.7, 1.4), "contact_outlier_s": 0.0,
}  # fmt: skip
RULES: dict[str, dict] = {
    "auto": {},
    "auto (before)": BEFORE,
    "fixed 10": {"tilt_deg": 10.0},
    "no reorient": {"reorient": False},
    "no floor cap": {"plane_sigma_deg": 0.0},
    "no rulers": {"ruler_weight": 0.0},
    "rulers 0.5": {"ruler_weight": 0.5},
    "floor only": {"prior_sigma_deg": 0.0, "use_verticals": False, "ruler_weight": 0.0},
    "prior only": {
        "prior_sigma_deg": float("inf"),
        "use_verticals": False,
        "use_floor": False,
        "ruler_weight": 0.0,
    },  # fmt: skip
    "image+prior": {"use_floor": False},
    "floor+prior": {"use_verticals": False, "ruler_weight": 0.0},
    "all, σ 2": {"prior_sigma_deg": 2.0},
    "all, σ 8": {"prior_sigma_deg": 8.0},
    "contact: stance": {"contact": "stance"},
    "guessed focal": {"focal_px": None},
    "guessed, no rulers": {"focal_px": None, "rulers_guessed_focal": False},
    "guessed, rulers 1.0": {"focal_px": None, "ruler_weight": 1.0},
    "guessed (before)": BEFORE | {"focal_px": None},
}
SHOWN = ("auto", "auto (before)", "fixed 10")  # per clip; every rule in the medians


@dataclass(frozen=True)
class Clip:
    name: str
    world: np.ndarray  # (F, P, 17, 3) true world metres, z up, floor z = 0
    cam_3d: np.ndarray  # (F, P, 17, 3) true camera frame
    keypoints: np.ndarray  # (F, P, 17, 2) noisy px
    scores: np.ndarray  # (F, P, 17)
    size: tuple[int, int]
    focal: float
    up_cam: np.ndarray  # true world up in camera coordinates
    height: float  # true camera height above the floor
    truth_aligned: np.ndarray  # (F, P, 17, 3) the truth in our world convention
    pitch: float
    roll: float
    distance: float


def make_clip(data, seqs: tuple[str, ...], pitch: float, seed: int, frames: int) -> Clip:
    rng = np.random.default_rng(seed)
    people = []
    offsets = ((0.0, 0.0), (1.6, 1.2), (-1.5, 2.0))
    for k, name in enumerate(seqs):
        g = data[name][200 : 200 + 2 * frames : 2].astype(np.float64)
        g[..., :2] -= g[:, 0, :2].mean(0)  # each person's walk centred on the scene origin ...
        g[..., :2] += offsets[k]  # ... then spread out
        people.append(g)
    world = np.stack(people, axis=1)
    F, P = world.shape[:2]
    ranges = CameraRanges(
        pitch_deg=(pitch, pitch), distance_m=(3.0, 15.0), focal_frac=(0.6, 1.4),
        sizes=((1920, 1080), (1080, 1920), (1280, 720), (720, 1280)), off_centre=0.3,
    )  # fmt: skip
    vc = sample_camera(world.reshape(-1, 17, 3), rng, ranges)
    cam = vc.camera
    cam3d = world_to_camera(world.reshape(-1, 17, 3), cam).reshape(world.shape)
    uv = vc.camera.f[0] * cam3d[..., :2] / cam3d[..., 2:3] + cam.c
    kp, sc = np.zeros(uv.shape, np.float32), np.zeros(uv.shape[:3], np.float32)
    for p in range(P):
        noisy = detector_like_2d(uv[:, p], rng, fps=FPS)
        kp[:, p], sc[:, p] = noisy.keypoints, noisy.confidence
    up = cam.R @ np.array([0.0, 0.0, 1.0])
    R = rotation_from_up(up)
    aligned = cam3d @ R.T + [0.0, 0.0, float(cam.T[2])]
    return Clip(
        name=" + ".join(seqs), world=world, cam_3d=cam3d, keypoints=kp, scores=sc,
        size=tuple(int(v) for v in cam.res), focal=float(cam.f[0]), up_cam=up,
        height=float(cam.T[2]), truth_aligned=aligned, pitch=vc.pitch_deg, roll=vc.roll_deg,
        distance=vc.distance_m,
    )  # fmt: skip


def score(clip: Clip, joints: np.ndarray, est) -> dict[str, float]:
    """The four numbers of one clip and rule."""
    drift = []
    for p in range(joints.shape[1]):
        low = np.fmin(joints[:, p, 3, 2], joints[:, p, 6, 2])
        low = low[np.isfinite(low)]
        tru = np.fmin(clip.world[:, p, 3, 2], clip.world[:, p, 6, 2])
        if low.size < 10:
            continue
        spread = np.subtract(*np.percentile(low, [95, 5]))
        drift.append(abs(spread - np.subtract(*np.percentile(tru, [95, 5]))))
    root = np.linalg.norm(joints[:, :, 0] - clip.truth_aligned[:, :, 0], axis=-1)
    sizes = []
    for p in range(joints.shape[1]):
        ratio = standing_height(joints[:, p]) / standing_height(clip.world[:, p])
        ratio = ratio[np.isfinite(ratio)]
        if ratio.size >= 10:
            sizes.append(100.0 * (np.percentile(ratio, 90) / np.percentile(ratio, 10) - 1.0))
    return {
        "gravity": angle_deg(np.asarray(est.up_cam), clip.up_cam),
        "drift": max(drift) if drift else float("nan"),
        "height": 100.0 * abs(est.height_m - clip.height) / clip.height,
        "root": float(np.nanmean(root)),
        "size": max(sizes) if sizes else float("nan"),
        "agree": est.floor_vs_body_up_deg,
        "claimed": est.gravity_std_deg,
    }


def run_rules(clip: Clip, rel: np.ndarray, kp, sc, base: WorldConfig) -> dict[str, dict]:
    out = {}
    for rule, kw in RULES.items():
        res = place_in_world(rel, kp, sc, clip.size, replace(base, **kw), fps=FPS)
        out[rule] = score(clip, res.joints, res.camera) | {"method": res.camera.method}
    return out


def lift_e2e(clip: Clip, lifter, tmp: Path):
    """The `hgmamba lift --keypoints` stages: write the 2D, the front end, the lifter."""
    from detectors import load_keypoints
    from hgmamba_core.poses import normalize_screen

    f = tmp / "clip.npz"
    kp = np.concatenate([clip.keypoints, clip.scores[..., None]], -1)
    np.savez(f, keypoints=kp, fps=FPS, size=np.array(clip.size), layout="h36m")
    pose2d = load_keypoints(f, person="all").poses
    xy = normalize_screen(pose2d.keypoints, *pose2d.size)
    conf = np.nan_to_num(pose2d.scores, nan=0.0)[..., None]
    tracks = [np.concatenate([xy[:, p], conf[:, p]], -1) for p in range(pose2d.num_persons)]
    rel = np.stack(lifter.lift_tracks(tracks), axis=1)
    # the front end orders persons by its own rule: match them to the truth by their 2D
    order = []
    for p in range(pose2d.num_persons):
        d = [
            np.nanmean(np.abs(pose2d.keypoints[:, p] - clip.keypoints[:, q]))
            for q in range(clip.keypoints.shape[1])
        ]
        order.append(int(np.nanargmin(d)))
    inv = np.argsort(order)
    return rel[:, inv], pose2d.keypoints[:, inv], pose2d.scores[:, inv]


def _person_share(c: Clip) -> float:
    """Median person height in the image / image width (H36M training: about 0.4-0.5)."""
    ys = c.keypoints[..., 1]
    return float(np.nanmedian(np.nanmax(ys, -1) - np.nanmin(ys, -1)) / c.size[0])


def table(title: str, rows: list[tuple[str, dict[str, dict]]]) -> None:
    print(f"\n== {title}")
    print(
        f"{'clip':38s} {'size':>5s} {'pitch':>5s} {'roll':>5s} {'dist':>5s} | {'rule':13s} {'grav°':>6s} {'drift m':>7s} {'height%':>7s} {'root m':>6s}  method / floor-vs-body°"
    )
    for name, res in rows:
        for k, rule in enumerate(SHOWN):
            r = res[rule]
            head = name if k == 0 else ""
            print(
                f"{head:63s} | {rule:13s} {r['gravity']:6.2f} {r['drift']:7.3f} {r['height']:7.1f} {r['root']:6.2f}  {r['method']}"
                + (f" / {r['agree']:.1f}" if k == 0 and np.isfinite(r["agree"] or np.nan) else "")
            )
    print(f"\n   medians over {len(rows)} clips (worst clip in brackets)")
    print(
        f"   {'rule':20s} {'gravity°':>15s} {'drift m':>15s} {'height %':>15s} {'root m':>15s}"
        f" {'size drift %':>15s}"
    )
    for rule in RULES:
        vals = {
            m: np.array([res[rule][m] for _, res in rows], float)
            for m in ("gravity", "drift", "height", "root", "size")
        }
        cells = [f"{np.nanmedian(v):6.2f} ({np.nanmax(v):6.2f})" for v in vals.values()]
        print(f"   {rule:20s} " + " ".join(f"{c:>15s}" for c in cells))
    err = np.array([res["auto"]["gravity"] for _, res in rows], float)
    claim = np.array([res["auto"]["claimed"] for _, res in rows], float)
    has = np.isfinite(claim)
    if has.any():
        inside = int((err[has] <= 2 * claim[has]).sum())
        print(
            f"   auto's stated gravity ± (clips with one): median {np.median(claim[has]):.1f}°; "
            f"the error is within 2x it in {inside} of {int(has.sum())}"
        )
    agree = np.array([res["auto"]["agree"] for _, res in rows], float)
    agree = agree[np.isfinite(agree)]
    if agree.size:
        print(
            f"   floor fit vs body-up prior: median {np.median(agree):.1f}°, > 5° in {int((agree > 5).sum())} of {agree.size} clips with a floor fit"
        )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--frames", type=int, default=200, help="frames per clip at 25 fps")
    ap.add_argument("--no-e2e", action="store_true", help="geometry alone")
    ap.add_argument("--clips", type=int, default=len(CLIPS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--cache", type=Path, help="npz of the lifted poses: written if missing, else reused"
    )
    ap.add_argument("--checkpoint", type=Path, help="lifter weights (default: lift's default)")
    args = ap.parse_args()
    with np.load(H36M) as z:
        names = {n for seqs, _ in CLIPS[: args.clips] for n in seqs}
        data = {n: z[n] for n in names}
    clips = [
        make_clip(data, seqs, pitch, args.seed + i, args.frames)
        for i, (seqs, pitch) in enumerate(CLIPS[: args.clips])
    ]
    label = [
        f"{c.name[:38]:38s} {_person_share(c):5.2f} {c.pitch:5.0f} {c.roll:5.1f} {c.distance:5.1f}"
        for c in clips
    ]
    t0 = time.perf_counter()
    geo = []
    for c, lab in zip(clips, label, strict=True):
        rel = c.cam_3d - c.cam_3d[:, :, :1]
        base = WorldConfig(focal_px=c.focal, standing_height_m=None)
        geo.append((lab, run_rules(c, rel, c.keypoints, c.scores, base)))
    table(
        f"(a) geometry alone: true camera-frame 3D + detector-like 2D ({time.perf_counter() - t0:.1f} s)",
        geo,
    )
    if args.no_e2e:
        return
    from hgmamba_core.pipeline import LiftOptions, load_lifter

    lifter = load_lifter(LiftOptions(progress=False, checkpoint=args.checkpoint))
    cached = dict(np.load(args.cache)) if args.cache and args.cache.is_file() else {}
    t0 = time.perf_counter()
    e2e = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (c, lab) in enumerate(zip(clips, label, strict=True)):
            if f"rel{k}" in cached:
                rel, kp, sc = (cached[f"{n}{k}"] for n in ("rel", "kp", "sc"))
            else:
                rel, kp, sc = lift_e2e(c, lifter, Path(tmp))
                cached |= {f"rel{k}": rel, f"kp{k}": kp, f"sc{k}": sc}
            base = WorldConfig(focal_px=c.focal)
            e2e.append((lab, run_rules(c, rel, kp, sc, base)))
            print(f"   lifted {c.name} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    if args.cache:
        np.savez(args.cache, **cached)
    table(
        f"(b) end to end: `hgmamba lift --keypoints` stages, {lifter.checkpoint} ({time.perf_counter() - t0:.0f} s)",
        e2e,
    )


if __name__ == "__main__":
    main()
