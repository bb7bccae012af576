"""Compile time of the CPU kernels into an empty cache: the eval kernel (mixer_cpu.cpp, the
system compiler, no torch headers) against the training scan's torch extension (scan_cpu.cpp,
torch.utils.cpp_extension), wall and CPU seconds, one after the other in one run.

    python bench/kernel_build.py [--skip-extension]

Each build runs in a child process (`python -c ...`) with its own empty $HGMAMBA_CACHE; CPU is
that child's user + system time including the compiler it starts (getrusage of children), so
Python's own start-up and imports (~1-3 s of it) are in both.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
JOBS = {
    "eval kernel, -march=native": "from hgmamba_core.ssm import mixer_kernel as m; assert m.load()",
    "eval kernel, portable": "from hgmamba_core.ssm import mixer_kernel as m; assert m.load()",
    "torch extension, -march=native": (
        "from hgmamba_core.ssm import fused; assert fused.load_extension()"
    ),
}


def timed_child(code: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of `python -c code`, its compiler included."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skip-extension", action="store_true")
    args = ap.parse_args()
    rows = []
    for label, code in JOBS.items():
        if args.skip_extension and label.startswith("torch"):
            continue
        with tempfile.TemporaryDirectory(prefix="hgmamba-build-") as cache:
            env = dict(os.environ, HGMAMBA_CACHE=cache, PYTHONPATH=str(REPO))
            env.pop("HGMAMBA_NO_FUSED", None)
            env.pop("HGMAMBA_SCAN_PORTABLE", None)
            if label.endswith("portable"):
                env["HGMAMBA_SCAN_PORTABLE"] = "1"
            wall, cpu = timed_child(code, env)
            _, load_cpu = timed_child(code, env)  # the same process, build cached: start-up
        rows.append((label, wall, cpu, load_cpu))
        print(f"{label:32s} {wall:6.1f} s wall, {cpu:6.1f} s CPU "
              f"(a cached load in the same child: {load_cpu:.1f} s CPU)", flush=True)  # fmt: skip
    if len(rows) == 3:
        new, ext = rows[0], rows[2]
        print(f"torch extension / eval kernel: {ext[1] / new[1]:.1f}x wall, "
              f"{(ext[2] - ext[3]) / max(1e-9, new[2] - new[3]):.1f}x CPU (start-up taken off)")  # fmt: skip


if __name__ == "__main__":
    main()
