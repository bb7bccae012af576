"""First vs warm `hgmamba lift` of the demo clip, each in a fresh process, with empty caches.

    python bench/first_run.py                       # --no-render and with render
    python bench/first_run.py --modes render --detector-backend torch

"First" runs with empty caches: $HGMAMBA_CACHE (the CPU scan kernel, detector exports),
MPLCONFIGDIR (Matplotlib's font list), YOLO_CONFIG_DIR (Ultralytics' settings), all in a
temporary folder. Since the kernel is now built in a detached background process, the script
waits for that build to finish (and prints how long it took after the first run) before the
warm run, which reuses the same caches. Each pair (--no-render, render) has its own caches. Prints wall seconds and each run's stage times.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STAGE = re.compile(r"^\s*(decode|detect|lift|write|render|total)\s*\S\s*([\d.]+)\s*\S", re.M)


def cache_env(root: Path) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    return {
        "HGMAMBA_CACHE": str(root / "hgmamba"),
        "MPLCONFIGDIR": str(root / "mpl"),
        "YOLO_CONFIG_DIR": str(root / "yolo"),
    }


def run_lift(env: dict[str, str], out: Path, render: bool, backend: str) -> tuple[float, str]:
    """(wall seconds, stage summary) of one `hgmamba lift` of the demo clip."""
    cmd = [sys.executable, "-m", "hgmamba_cli.app", "lift", "--out", str(out),
           "--detector-backend", backend]  # fmt: skip
    if not render:
        cmd.append("--no-render")
    full = dict(os.environ, **env, PYTHONPATH=str(REPO), COLUMNS="120")
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=full, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        print(f"  failed ({r.returncode}): {r.stderr.strip()[-400:]}")
    stages = " ".join(f"{k} {v}" for k, v in STAGE.findall(r.stdout))
    notes = [ln for ln in r.stderr.splitlines() if ln.startswith(("hgmamba:", "exporting"))]
    return wall, stages + "".join(f"\n      stderr: {n}" for n in notes)


def wait_for_build(env: dict[str, str]) -> float:
    """Seconds until the background scan-kernel builder (if any) has finished."""
    os.environ["HGMAMBA_CACHE"] = env["HGMAMBA_CACHE"]
    from hgmamba_core import background
    from hgmamba_core.ssm import fused

    t0 = time.perf_counter()
    lock = fused.build_lock()
    while background.is_running(lock):
        time.sleep(0.5)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--detector-backend", default="auto")
    ap.add_argument("--modes", default="no-render,render", help="no-render, render or both")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hgmamba-first-") as d:
        tmp = Path(d)
        rows = []
        for label in [m.strip() for m in args.modes.split(",") if m.strip()]:
            render = label == "render"
            env = cache_env(tmp / f"cache_{label}")  # empty caches for this pair
            first, s1 = run_lift(env, tmp / "out", render, args.detector_backend)
            print(f"{label:10s} first {first:6.1f} s  {s1}", flush=True)
            built = wait_for_build(env)  # a quiet machine between runs: the build lands
            print(f"  background kernel build finished {built:.1f} s after the first run")
            second, s2 = run_lift(env, tmp / "out", render, args.detector_backend)
            print(f"{label:10s} warm  {second:6.1f} s  {s2}", flush=True)
            rows.append((label, first, second))
        for label, first, second in rows:
            print(f"{label:10s} first - warm = {first - second:+6.1f} s "
                  f"(first {first:.1f} s, warm {second:.1f} s, ratio {first / second:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
