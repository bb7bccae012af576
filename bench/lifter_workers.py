"""Lifter eval with windows split across single-threaded workers vs one multi-threaded pass.

    python bench/lifter_workers.py [--variant xs] [--batches 2 4 8 16 32] [--threads 2]
                                   [--repeats 7] [--no-bf16]

Same model, same input, the two settings of `model.parallel_windows` interleaved within each
repeat (model/window_workers.py); prints the best frames/s of each, the median of the paired
time ratios (workers / one pass: below 1 is faster), and the largest output difference.
Batches below 2 x MIN_WINDOWS_PER_WORKER run inline either way (`worker_count`).
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext

import torch

from hgmamba_core.model import build_model
from hgmamba_core.model.window_workers import worker_count


def _timed(model, x, parallel: bool) -> tuple[float, torch.Tensor]:
    model.parallel_windows = parallel
    start = time.perf_counter()
    y = model(x)
    return time.perf_counter() - start, y


def compare(variant: str, batch: int, repeats: int, amp: bool) -> str:
    model = build_model(variant).eval()
    x = torch.randn(batch, model.cfg.frames, model.cfg.num_joints, model.cfg.dim_in)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if amp else nullcontext()
    times: dict[bool, list[float]] = {True: [], False: []}
    with torch.inference_mode(), ctx:
        outs = {p: _timed(model, x, p)[1] for p in times}  # warm-up
        for _ in range(repeats):
            for p in times:
                times[p].append(_timed(model, x, p)[0])
    diff = float((outs[True].float() - outs[False].float()).abs().max())
    frames = batch * model.cfg.frames
    paired = statistics.median(a / b for a, b in zip(times[True], times[False], strict=True))
    workers = worker_count(batch, torch.get_num_threads())
    return (
        f"{variant} {'bf16' if amp else 'fp32'} batch {batch:3d} ({workers} workers): "
        f"workers {frames / min(times[True]):7.1f} frames/s, one pass "
        f"{frames / min(times[False]):7.1f}; time ratio paired median {paired:.3f}; "
        f"max |diff| {diff:.2g}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="xs")
    ap.add_argument("--batches", type=int, nargs="+", default=[2, 4, 8, 16, 32])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--no-bf16", action="store_true", help="float32 only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {time.ctime()}")
    for amp in (False,) if args.no_bf16 else (False, True):
        for b in args.batches:
            print(compare(args.variant, b, args.repeats, amp), flush=True)


if __name__ == "__main__":
    main()
