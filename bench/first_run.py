"""First vs warm `hgmamba lift` of the demo clip, each in a fresh process, with empty caches.

    python bench/first_run.py                       # --no-render and with render
    python bench/first_run.py --modes render --detector-backend torch
    python bench/first_run.py --modes no-render --before /work/main   # another checkout too

"First" runs with empty caches: $HGMAMBA_CACHE (the CPU kernels, detector exports),
MPLCONFIGDIR (Matplotlib's font list), YOLO_CONFIG_DIR (Ultralytics' settings), all in a
temporary folder; "warm" runs again with the caches the first run left. Each pair (--no-render,
render; and each checkout) has its own caches; with --before the other checkout's pair runs
first in the same run (for a checkout that still builds a kernel in a background process, the
script waits until no build lock in its cache is held before the warm run). Prints wall
seconds, each run's stage times and hgmamba's stderr notes, and what the first run left in the
caches (whether the torch extension was built, whether Matplotlib was imported).
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


def run_lift(
    repo: Path, env: dict[str, str], out: Path, render: bool, backend: str
) -> tuple[float, str]:
    """(wall seconds, stage summary) of one `hgmamba lift` of the demo clip from `repo`."""
    cmd = [sys.executable, "-m", "hgmamba_cli.app", "lift", "--out", str(out),
           "--detector-backend", backend]  # fmt: skip
    if not render:
        cmd.append("--no-render")
    full = dict(os.environ, **env, PYTHONPATH=str(repo), COLUMNS="120")
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=full, cwd=repo, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        print(f"  failed ({r.returncode}): {r.stderr.strip()[-400:]}")
    stages = " ".join(f"{k} {v}" for k, v in STAGE.findall(r.stdout))
    notes = [ln for ln in r.stderr.splitlines() if ln.startswith(("hgmamba:", "exporting"))]
    return wall, stages + "".join(f"\n      stderr: {n}" for n in notes)


def wait_for_builds(env: dict[str, str]) -> float:
    """Seconds until no build lock in the cache is held (a background builder, if any)."""
    from hgmamba_core.buildlock import is_held

    locks = Path(env["HGMAMBA_CACHE"]) / "locks"
    t0 = time.perf_counter()
    while locks.is_dir() and any(is_held(p) for p in locks.glob("*.lock")):
        time.sleep(0.5)
    return time.perf_counter() - t0


def cache_report(env: dict[str, str]) -> str:
    """What the first run left: kernels built, exports, Matplotlib's font cache."""
    hg = Path(env["HGMAMBA_CACHE"])
    ext = [p.name for p in (hg / "scan").glob("*/*.so")] if (hg / "scan").is_dir() else []
    mixer = [p.name for p in (hg / "mixer").glob("*.so")] if (hg / "mixer").is_dir() else []
    mpl = Path(env["MPLCONFIGDIR"])
    used_mpl = mpl.is_dir() and any(mpl.iterdir())
    return (
        f"torch extension builds: {len(ext)}, eval kernel builds: {len(mixer)}, "
        f"Matplotlib imported: {'yes' if used_mpl else 'no'}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--detector-backend", default="auto")
    ap.add_argument("--modes", default="no-render,render", help="no-render, render or both")
    ap.add_argument("--before", type=Path, default=None, help="another checkout to run first")
    args = ap.parse_args()
    repos = [("before", args.before.resolve())] if args.before else []
    repos.append(("this" if args.before else "", REPO))
    with tempfile.TemporaryDirectory(prefix="hgmamba-first-") as d:
        tmp = Path(d)
        rows = []
        modes = [m.strip() for m in args.modes.split(",") if m.strip()]
        for k, mode in enumerate(modes):  # a mode may repeat (`render,render`): two pairs
            for tag, repo in repos:
                label = f"{mode} {tag}".strip()
                render = mode == "render"
                env = cache_env(tmp / f"cache_{k}_{mode}_{tag}")  # empty caches for this pair
                first, s1 = run_lift(repo, env, tmp / "out", render, args.detector_backend)
                print(f"{label:16s} first {first:6.1f} s  {s1}", flush=True)
                print(f"  after the first run: {cache_report(env)}")
                waited = wait_for_builds(env)
                if waited > 0.5:
                    print(f"  background build finished {waited:.1f} s after the first run")
                second, s2 = run_lift(repo, env, tmp / "out", render, args.detector_backend)
                print(f"{label:16s} warm  {second:6.1f} s  {s2}", flush=True)
                rows.append((label, first, second))
        for label, first, second in rows:
            print(f"{label:16s} first - warm = {first - second:+6.1f} s "
                  f"(first {first:.1f} s, warm {second:.1f} s, ratio {first / second:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
