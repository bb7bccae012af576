"""On the GPU machine: P1/P2 of checkpoints on all S9+S11 frames with GT and SH 2D (float32).

python3 tools/device/eval_run.py $OUT/xs_gt_final.pt [...]   -> $OUT/eval.json
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data", default="/tmp/h36m")
    args = ap.parse_args()
    from hgmamba_core.evaluate import evaluate_checkpoint

    results = {}
    for ckpt in args.checkpoints:
        for two_d in ("gt", "sh"):
            run = evaluate_checkpoint("h36m", args.data, ckpt, two_d=two_d, batch_size=512)
            rep = run.report
            results[f"{Path(ckpt).stem}_{two_d}"] = {
                "average": rep.average, "frames": rep.frames, "rows": rep.rows,
            }  # fmt: skip
            print(Path(ckpt).stem, two_d, rep.average, rep.frames, flush=True)
    out = Path(os.environ.get("OUT", "/tmp/out")) / "eval.json"
    out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
