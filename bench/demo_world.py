"""The demo clip in the world frame: is every walking person upright and on the floor?

Reads the cleaned 2D that `hgmamba lift` wrote for the demo clip (pose2d.npz of every tracked
person), lifts it once with the shipped (or a given) lifter, then places it in the world with
each world rule and prints per person: frames present, walking frames (the pelvis moves at
least WALK_HEIGHTS_PER_S body heights per second in the image over one second, so the count
does not depend on the world rule), the median trunk angle from vertical on walking frames,
and the lowest ankle's height above the floor (median and 95th percentile over walking frames;
stance ankles stand ANKLE_ABOVE_FLOOR_M = 0.06 m above it). The issue's goals: trunk within 15
degrees of vertical, lowest ankle within 0.10 m of the floor at the 95th percentile, every
walking person lifted.

    hgmamba lift --out results --no-render --export npy   # once: writes the demo's pose2d.npz
    python bench/demo_world.py --pose2d results/vtest_10s/pose2d.npz
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hgmamba_core.world import WorldConfig, place_in_world  # noqa: E402
from hgmamba_core.world.frame import standing_height  # noqa: E402

WALK_HEIGHTS_PER_S = 0.25  # a 1.3 m/s walk is ~0.8 heights/s across the image
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from world import BEFORE  # noqa: E402  (the rule before 2026-12-01, as in bench/world.py)

KEYS = ("torso", "p50", "p95", "size")
RULES: dict[str, dict] = {
    "auto": {},
    "auto (before)": BEFORE,
    "fixed 10": {"tilt_deg": 10.0},
    "no rulers (with a guessed focal length: the rule before 2026-12-02)": {
        "rulers_guessed_focal": False
    },
    "rulers 1.0": {"ruler_weight": 1.0},
}


def walking_frames(kp: np.ndarray, fps: float) -> np.ndarray:
    """(F, 17, 2) px -> (F,) the pelvis moves >= WALK_HEIGHTS_PER_S heights/s over ~1 s."""
    F = kp.shape[0]
    lag = max(1, int(round(0.5 * fps)))
    idx = np.arange(F)
    a, b = np.clip(idx - lag, 0, F - 1), np.clip(idx + lag, 0, F - 1)
    pel = kp[:, 0]
    ys = kp[..., 1]
    with np.errstate(invalid="ignore", all="ignore"):
        tall = np.nanmax(ys, axis=1) - np.nanmin(ys, axis=1)
        speed = np.linalg.norm(pel[b] - pel[a], axis=-1) / tall / (np.maximum(b - a, 1) / fps)
    return np.nan_to_num(speed, nan=0.0) >= WALK_HEIGHTS_PER_S


def size_drift(world: np.ndarray) -> float:
    """How much one person's size changes over frames (F, 17, 3): p90 / p10 - 1 of the standing
    height, in % (a person walking towards or away from the camera keeps their size)."""
    h = standing_height(world)
    return float(100.0 * (np.percentile(h, 90) / np.percentile(h, 10) - 1.0))


def person_numbers(world: np.ndarray, walk: np.ndarray) -> dict[str, float]:
    """Trunk angle from vertical, lowest-ankle height and size drift of one person (F, 17, 3)."""
    ok = walk & np.isfinite(world).all((1, 2))
    if ok.sum() < 3:
        return {"walk": int(ok.sum()), "torso": np.nan, "p50": np.nan, "p95": np.nan,
                "size": np.nan}  # fmt: skip
    trunk = world[ok, 8] - world[ok, 0]
    cos = trunk[:, 2] / np.linalg.norm(trunk, axis=-1)
    torso = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    low = np.minimum(world[ok, 3, 2], world[ok, 6, 2])
    return {
        "walk": int(ok.sum()),
        "torso": float(np.median(torso)),
        "p50": float(np.percentile(low, 50)),
        "p95": float(np.percentile(low, 95)),
        "p05": float(np.percentile(low, 5)),
        "size": size_drift(world[ok]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--pose2d", type=Path, default=Path("results/vtest_10s/pose2d.npz"))
    ap.add_argument("--checkpoint", type=Path, help="lifter weights (default: lift's default)")
    ap.add_argument("--focal", type=float, help="focal length px (default max(w, h), as lift)")
    args = ap.parse_args()
    if not args.pose2d.is_file():
        sys.exit(f"no {args.pose2d}: run `hgmamba lift --out results --no-render` first")
    from hgmamba_core.pipeline import LiftOptions, load_lifter
    from hgmamba_core.poses import Pose2DSequence, normalize_screen

    pose2d = Pose2DSequence.load(args.pose2d)
    lifter = load_lifter(LiftOptions(progress=False, checkpoint=args.checkpoint))
    xy = normalize_screen(pose2d.keypoints, *pose2d.size)
    conf = np.nan_to_num(pose2d.scores, nan=0.0)[..., None]
    tracks = [np.concatenate([xy[:, p], conf[:, p]], -1) for p in range(pose2d.num_persons)]
    rel = np.stack(lifter.lift_tracks(tracks), axis=1)
    fps = pose2d.fps or 25.0
    kp = pose2d.keypoints.astype(np.float64)
    walk = [walking_frames(kp[:, p], fps) for p in range(pose2d.num_persons)]
    base = WorldConfig(focal_px=args.focal, focal_source="given" if args.focal else "")
    print(
        f"demo: {pose2d.num_frames} frames, {pose2d.num_persons} lifted persons, "
        f"{pose2d.size[0]}x{pose2d.size[1]}, weights {lifter.checkpoint}"
    )
    for rule, kw in RULES.items():
        res = place_in_world(
            rel, pose2d.keypoints, pose2d.scores, pose2d.size, replace(base, **kw), fps
        )
        print(f"\n== {rule}: {res.camera.summary()}")
        for n in res.camera.notes:
            print(f"   note: {n}")
        print(
            f"   {'id':>4s} {'frames':>6s} {'walk':>5s} {'torso°':>7s} {'ankle p05':>9s} {'p50':>6s} {'p95':>6s} {'size%':>6s}"
        )
        rows = []
        for p in range(pose2d.num_persons):
            present = int(np.isfinite(res.joints[:, p]).all((1, 2)).sum())
            r = person_numbers(res.joints[:, p].astype(np.float64), walk[p])
            rows.append(r)
            print(
                f"   {int(pose2d.track_ids[p]):4d} {present:6d} {r['walk']:5d} {r['torso']:7.1f}"
                f" {r.get('p05', np.nan):9.2f} {r['p50']:6.2f} {r['p95']:6.2f} {r['size']:6.1f}"
            )
        walkers = [r for r in rows if r["walk"] >= 3]
        med = {k: float(np.nanmedian([r[k] for r in walkers])) for k in KEYS}
        worst = {k: float(np.nanmax([r[k] for r in walkers])) for k in KEYS}
        print(
            f"   {len(walkers)} of {len(rows)} lifted persons walk; medians over them (worst): "
            f"torso {med['torso']:.1f}° ({worst['torso']:.1f}), lowest ankle p50 "
            f"{med['p50']:.2f} m ({worst['p50']:.2f}), p95 {med['p95']:.2f} m ({worst['p95']:.2f}), "
            f"size drift {med['size']:.1f} % ({worst['size']:.1f})"
        )


if __name__ == "__main__":
    main()
