"""Wild-camera benchmark: compare lifter checkpoints on views H36M's studio cameras never had.

    python bench/wild.py assets/weights/hgmamba_xs_h36m.pt /work/runs/xs_wild/best.pt
    python bench/wild.py A.pt B.pt --per-bucket 32 --clips-every 8 --every 16 --json out.json

For every checkpoint, in one run and on the same windows:
- wild P1/P2 by pitch bucket (0-15, 15-30, 30-45, 45-60 degrees down): S9/S11 motion through
  fixed-seed virtual cameras (hgmamba_core.data.wild_bench) with detector-like 2D noise and the
  COCO front end's derived joints;
- stress: the same windows with 20 % of the joints displaced and given confidence 0;
- GT and SH P1/P2 on H36M S9/S11 (hgmamba_core.evaluate's predict_store + score, the same code
  as `hgmamba eval`) on a fixed subset: every `--clips-every`-th (sequence, camera) clip and
  every `--every`-th window of it (as `hgmamba eval --every`).
Each checkpoint's own input normalization (its meta) is applied. Flip test-time augmentation on.
Prints one table (rows: measures, columns: checkpoints) and optionally writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hgmamba_core.data.sources import load_clips  # noqa: E402
from hgmamba_core.data.wild_bench import (  # noqa: E402
    build_wild_set,
    score_windows,
    stress_inputs,
)
from hgmamba_core.data.windows import ClipStore  # noqa: E402
from hgmamba_core.evaluate import predict_store, predict_windows, score  # noqa: E402
from hgmamba_core.model.checkpoint import load_lifter  # noqa: E402


def h36m_subset(data: str, two_d: str, clips_every: int) -> ClipStore:
    """S9/S11 clips of one 2D source, every k-th (sequence, camera) clip: a fixed subset."""
    clips = load_clips("h36m", data, "test", two_d)
    return ClipStore.from_clips(clips[:: max(1, clips_every)])


def run(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Measure every checkpoint; returns {checkpoint: {measure: value}}."""
    t0 = time.time()
    ws = build_wild_set(args.data, per_bucket=args.per_bucket, seed=args.seed)
    stressed = stress_inputs(ws, share=args.stress_share, seed=args.seed)
    stores = {s: h36m_subset(args.data, s, args.clips_every) for s in ("gt", "sh")}
    print(
        f"wild: {len(ws.inputs)} windows ({args.per_bucket} per bucket), "
        f"GT/SH: {stores['gt'].num_clips}/{stores['sh'].num_clips} clips, 1 window in "
        f"{args.every}; built in {time.time() - t0:.0f} s",
        file=sys.stderr,
    )
    results: dict[str, dict[str, float]] = {}
    for path in args.checkpoints:
        t1 = time.time()
        model = load_lifter(path)
        length = int(model.meta.get("frames") or model.cfg.frames)
        stride = int(model.meta.get("frame_stride") or 1)
        res: dict[str, float] = {}
        for name, store in stores.items():
            pred, done = predict_store(model, store, length, stride, tile_every=args.every)
            avg = score("h36m", store, pred, done).average
            res[f"{name} P1"], res[f"{name} P2"] = avg["mpjpe_mm"], avg["p_mpjpe_mm"]
        pred = predict_windows(model, ws.inputs)
        for b, (lo, hi) in enumerate(ws.buckets):
            m = score_windows(pred[ws.bucket == b], ws.targets[ws.bucket == b])
            res[f"wild {lo:.0f}-{hi:.0f} P1"], res[f"wild {lo:.0f}-{hi:.0f} P2"] = m["p1"], m["p2"]
        m = score_windows(pred, ws.targets)
        res["wild all P1"], res["wild all P2"] = m["p1"], m["p2"]
        m = score_windows(predict_windows(model, stressed), ws.targets)
        res["stress P1"], res["stress P2"] = m["p1"], m["p2"]
        res["seconds"] = time.time() - t1
        results[str(path)] = res
        print(f"{path}: {res['seconds']:.0f} s", file=sys.stderr)
    return results


def print_table(results: dict[str, dict[str, float]]) -> None:
    names = list(results)
    rows = [k for k in next(iter(results.values())) if k != "seconds"]
    width = max(12, *(len(Path(n).name) for n in names))
    print("measure (mm)".ljust(18) + "".join(Path(n).name.rjust(width + 2) for n in names))
    for r in rows:
        print(r.ljust(18) + "".join(f"{results[n][r]:.1f}".rjust(width + 2) for n in names))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+", help="lifter checkpoints to compare")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "h36m"))
    ap.add_argument("--per-bucket", type=int, default=32, help="wild windows per pitch bucket")
    ap.add_argument("--clips-every", type=int, default=8, help="GT/SH: every k-th clip")
    ap.add_argument("--every", type=int, default=16, help="GT/SH: every k-th window of a clip")
    ap.add_argument("--stress-share", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    for p in args.checkpoints:
        if not Path(p).is_file():
            print(f"checkpoint not found: {p}", file=sys.stderr)
            return 2
    results = run(args)
    print_table(results)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"json": str(args.json)}, "results": results},
                indent=2,
                default=str,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=1)
    raise SystemExit(main())
