"""Eval windows split across single-threaded worker threads instead of multi-threaded GEMMs.

The lifter's windows are independent, and its GEMMs are small ((3672, 64) x (64, 256) for a
pass of 8 XS windows), so splitting each GEMM over the cores scales poorly. Giving every core
its own share of the windows, each worker running its torch ops and the eval kernel on one
thread, measured 0.82x the time of the two-thread pass in float32 and 0.74x under bf16
autocast (XS, 16 windows, 2-core AMD Zen 4; README, Speed), with bitwise the same output.

Threads, not processes: torch releases the GIL inside its ops. The workers' per-thread
settings follow the caller: grad mode / inference mode and CPU autocast are thread-local in
torch, so each worker re-enters the caller's. `torch.set_num_threads(1)` in a worker sets that
thread's OpenMP and MKL thread counts (thread-local), and also torch's process-wide default
that threads created later start from, which the caller's count is restored to afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import torch

# Below this many windows per worker the split did not pay (XS, bench/lifter_workers.py:
# batch 4 on 2 workers 1.02x / 1.10x the time of one pass in float32 / bf16, batch 8 0.88x / 0.87x).
MIN_WINDOWS_PER_WORKER = 4


def worker_count(n_windows: int, threads: int) -> int:
    """How many workers for n_windows on `threads` torch threads: 1 means run inline."""
    if threads < 2:
        return 1
    return max(1, min(threads, n_windows // MIN_WINDOWS_PER_WORKER))


def split_even(n: int, parts: int) -> list[int]:
    """Sizes of `parts` contiguous groups of n items, differing by at most one."""
    base, extra = divmod(n, parts)
    return [base + (k < extra) for k in range(parts)]


def map_windows(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, step: int, workers: int
) -> torch.Tensor:
    """torch.cat of fn over chunks of at most `step` windows (dim 0) of x, in order; with
    workers > 1, x is split into that many near-equal groups, each chunked on its own worker
    thread with one torch thread."""
    if workers <= 1:
        return torch.cat([fn(c) for c in x.split(step)])
    threads = torch.get_num_threads()
    inference = torch.is_inference_mode_enabled()
    autocast = torch.is_autocast_enabled("cpu")
    dtype = torch.get_autocast_dtype("cpu")

    def run(group: torch.Tensor) -> torch.Tensor:
        torch.set_num_threads(1)
        with ExitStack() as stack:
            stack.enter_context(torch.inference_mode() if inference else torch.no_grad())
            stack.enter_context(torch.autocast("cpu", dtype=dtype, enabled=autocast))
            return torch.cat([fn(c) for c in group.split(step)])

    groups = x.split(split_even(x.shape[0], workers))
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="hgmamba-windows") as pool:
            outs = list(pool.map(run, groups))
    finally:
        torch.set_num_threads(threads)
    return torch.cat(outs)
