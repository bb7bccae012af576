"""Lifter speed levers on the CPU, each against float32 at the default thread count, one run.

    python bench/lifter_levers.py [--data ../shared/data/h36m] [--batch 64] [--repeats 5]
                                  [--compile] [--checkpoint assets/weights/hgmamba_xs_h36m.pt]

The shipped XS weights on a fixed real input (the first `--batch` 27-frame windows of H36M S9
Walking, camera 54138969, ground-truth 2D), so the accuracy column is the max abs difference
of the output from float32's, in mm. Levers: one torch thread instead of the default (the
fused scan and BLAS share ATen's pool), bf16 autocast (fast only with AVX512-BF16/AMX; this
script says whether the CPU has them), and with --compile torch.compile (inductor; its compile
time is printed and not counted). Settings are visited in turn for every repeat and the best
repeat of each is kept, so a busy machine slows them alike.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from hgmamba_core.data.h36m import load_h36m
from hgmamba_core.data.windows import clip_inputs
from hgmamba_core.device import cpu_has_bf16
from hgmamba_core.model.checkpoint import load_lifter

REPO = Path(__file__).resolve().parents[1]


def real_windows(data: Path, batch: int, frames: int) -> torch.Tensor:
    """(batch, frames, 17, 3) consecutive windows of one real H36M clip."""
    clip = load_h36m(data, ["S9"], "gt", actions=["Walking"], cameras=["54138969"])[0]
    x = clip_inputs(clip)
    n = min(batch, len(x) // frames)
    return torch.from_numpy(np.ascontiguousarray(x[: n * frames].reshape(n, frames, 17, 3)))


def _setting(
    fn: Callable[[torch.Tensor], torch.Tensor], threads: int, bf16: bool
) -> Callable[[torch.Tensor], torch.Tensor]:
    """fn run with this many torch threads, under bf16 autocast or not."""

    def run(x: torch.Tensor) -> torch.Tensor:
        torch.set_num_threads(threads)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
        with torch.inference_mode(), ctx:
            return fn(x).float()

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "h36m")
    ap.add_argument(
        "--checkpoint", type=Path, default=REPO / "assets" / "weights" / "hgmamba_xs_h36m.pt"
    )
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--compile", action="store_true", help="also torch.compile (slow to build)")
    args = ap.parse_args()
    model = load_lifter(args.checkpoint, "cpu")
    x = real_windows(args.data, args.batch, model.cfg.frames)
    default = torch.get_num_threads()
    print(
        f"torch {torch.__version__}, default threads {default}, CPU bf16: "
        f"{'yes' if cpu_has_bf16() else 'no'}, input {tuple(x.shape)}, {time.ctime()}"
    )
    settings = {
        f"float32, {default} threads": _setting(model, default, False),
        "float32, 1 thread": _setting(model, 1, False),
        f"bf16 autocast, {default} threads": _setting(model, default, True),
    }
    if args.compile:
        compiled = torch.compile(model)
        t0 = time.perf_counter()
        _setting(compiled, default, False)(x)
        print(f"torch.compile build + first call: {time.perf_counter() - t0:.1f} s")
        settings[f"torch.compile, {default} threads"] = _setting(compiled, default, False)
    outs = {k: f(x) for k, f in settings.items()}  # warm-up, and the outputs compared
    best = dict.fromkeys(settings, float("inf"))
    for _ in range(args.repeats):
        for k, f in settings.items():
            t0 = time.perf_counter()
            f(x)
            best[k] = min(best[k], time.perf_counter() - t0)
    torch.set_num_threads(default)
    base = next(iter(settings))
    frames = x.shape[0] * x.shape[1]
    print(f"{'setting':28} {'frames/s':>9} {'x fp32':>7} {'max |diff| mm':>13}")
    for k in settings:
        diff = float((outs[k] - outs[base]).abs().max()) * 1000.0
        print(f"{k:28} {frames / best[k]:9.1f} {best[base] / best[k]:7.2f} {diff:13.3f}")


if __name__ == "__main__":
    main()
