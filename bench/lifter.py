"""Lifter speed: frames/s of each HGMamba variant in eval mode over batched full windows.

Runs on the CPU (and on CUDA when present). Each variant is timed with the real selective scan
and with the scan replaced by a no-op, interleaved, several repeats each, keeping the fastest
repeat of each: on a shared machine the best repeat is the one least disturbed by other jobs,
and interleaving makes the scan's share comparable. All numbers come from this one run.

    python bench/lifter.py [--variants xs,s,b] [--batch 16] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch

from hgmamba_core.model import build_model
from hgmamba_core.model.complexity import count_macs
from hgmamba_core.model.mamba_stream import ShuffleMamba
from hgmamba_core.ssm import auto_backend

GOAL_XS_CPU = 500.0  # frames/s, issue 3


def _no_scan(u, delta, A, B, C, D=None, **_kw):
    return u


def _set_scan(model, backend) -> None:
    for m in model.modules():
        if isinstance(m, ShuffleMamba):
            m.scan_backend = backend


def _time_once(model, x, device: str) -> float:
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    model(x)
    sync()
    return time.perf_counter() - start


def bench(variant: str, device: str, batch: int, repeats: int, amp: bool) -> dict:
    model = build_model(variant).to(device).eval()
    cfg = model.cfg
    x = torch.randn(batch, cfg.frames, cfg.num_joints, cfg.dim_in, device=device)
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if amp else nullcontext()
    best = {"auto": float("inf"), "none": float("inf")}
    with torch.inference_mode(), ctx:
        for backend in best:  # warm-up
            _set_scan(model, _no_scan if backend == "none" else backend)
            _time_once(model, x, device)
        for _ in range(repeats):
            for backend in best:
                _set_scan(model, _no_scan if backend == "none" else backend)
                best[backend] = min(best[backend], _time_once(model, x, device))
    frames = batch * cfg.frames
    macs = count_macs(build_model(variant)).total
    return {
        "variant": variant,
        "T": cfg.frames,
        "batch": batch,
        "fps": frames / best["auto"],
        "scan_share": 1.0 - best["none"] / best["auto"],
        "gmacs_per_s": batch * macs / best["auto"] / 1e9,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="xs,s,b")
    ap.add_argument("--batch", type=int, default=16, help="windows per forward pass (xs)")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats per setting")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--no-cuda", action="store_true")
    ap.add_argument("--no-cpu", action="store_true", help="CUDA only (short GPU leases)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [] if args.no_cpu else ["cpu"]
    devices += ["cuda"] if torch.cuda.is_available() and not args.no_cuda else []
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, {time.ctime()}")
    for device in devices:
        for v in args.variants.split(","):
            # Same frames per batch for every variant on the CPU (xs: batch x 27 frames).
            batch = args.batch if device == "cuda" else max(1, args.batch * 27 // build_t(v))
            for amp in (False, True) if device == "cuda" else (False,):
                r = bench(v, device, batch, args.repeats, amp)
                dtype = "bf16-autocast" if amp else "float32"
                print(
                    f"{v:>3} {device:>4} {dtype:>13} scan={auto_backend(device):<9}"
                    f" T={r['T']:>3} batch={r['batch']:>3}  {r['fps']:9.1f} frames/s"
                    f"  ({r['gmacs_per_s']:.1f} GMAC/s; scan {100 * r['scan_share']:.0f}% of time)",
                    flush=True,
                )
                if v == "xs" and device == "cpu":
                    print(
                        f"    XS on CPU: {r['fps'] / GOAL_XS_CPU:.2f} x the"
                        f" {GOAL_XS_CPU:.0f} frames/s goal",
                        flush=True,
                    )


def build_t(variant: str) -> int:
    from hgmamba_core.model.variants import get_variant

    return get_variant(variant).frames


if __name__ == "__main__":
    main()
