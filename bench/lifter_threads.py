"""Lifter frames/s under thread settings that must be fixed before torch starts, one run.

    python bench/lifter_threads.py [--batch 16] [--forwards 3] [--rounds 3]

OpenMP's wait policy (how idle pool threads wait: spinning or sleeping) is read once when the
runtime starts, so each setting runs in its own short child process; the children take turns
(round by round, settings in turn) so a busy machine slows them alike, and each child times
`--forwards` eval passes of HGMamba-XS after a warm-up (its start-up is not timed). The best
round of each setting is kept. On a CPU shared with other jobs, pool threads that spin at a
barrier burn the time slices their peers need; a passive wait or one thread avoids that.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import sys, time, torch
from hgmamba_core.model import build_model
torch.set_num_threads(int(sys.argv[1]))
batch, forwards = int(sys.argv[2]), int(sys.argv[3])
m = build_model("xs").eval()
x = torch.randn(batch, m.cfg.frames, 17, 3)
with torch.inference_mode():
    m(x)
    t0 = time.perf_counter()
    for _ in range(forwards):
        m(x)
print(batch * m.cfg.frames * forwards / (time.perf_counter() - t0))
"""

SETTINGS: dict[str, tuple[int, dict[str, str]]] = {
    "2 threads (default wait)": (2, {}),
    "2 threads, OMP_WAIT_POLICY=PASSIVE": (2, {"OMP_WAIT_POLICY": "PASSIVE"}),
    "1 thread": (1, {}),
}


def _child_fps(threads: int, env: dict[str, str], batch: int, forwards: int) -> float:
    full = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    full.update(env, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(threads), str(batch), str(forwards)],
        env=full, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--forwards", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    best = dict.fromkeys(SETTINGS, 0.0)
    for _ in range(args.rounds):
        for name, (threads, env) in SETTINGS.items():
            best[name] = max(best[name], _child_fps(threads, env, args.batch, args.forwards))
    base = next(iter(SETTINGS))
    load = os.getloadavg()[0]
    print(f"HGMamba-XS eval, batch {args.batch}, best of {args.rounds} rounds, load {load:.1f}")
    for name, fps in best.items():
        print(f"{name:36} {fps:8.1f} frames/s  x{fps / best[base]:.2f}")


if __name__ == "__main__":
    main()
