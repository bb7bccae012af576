"""Lifter speed: frames/s of each HGMamba variant in eval mode over batched full windows.

Runs on the CPU (and on CUDA when present). For each variant it also times the same forward
pass with the selective scan replaced by a no-op, so the scan's share of the time is visible.
All numbers come from this one run; the machine may be shared, so compare ratios.

    python bench/lifter.py [--variants xs,s,b] [--batch 16] [--seconds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from hgmamba_core.model import build_model
from hgmamba_core.model.complexity import count_macs
from hgmamba_core.model.info import measure_fps
from hgmamba_core.model.mamba_stream import ShuffleMamba
from hgmamba_core.ssm import auto_backend

GOAL_XS_CPU = 500.0  # frames/s, issue 3


def _no_scan(u, delta, A, B, C, D=None, **_kw):
    return u


def _set_scan(model, backend) -> None:
    for m in model.modules():
        if isinstance(m, ShuffleMamba):
            m.scan_backend = backend


def bench(variant: str, device: str, batch: int, seconds: float, autocast: bool) -> dict:
    model = build_model(variant).to(device).eval()
    t = model.cfg.frames
    ctx = (
        torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        if autocast
        else torch.autocast(device_type="cpu", enabled=False)
    )
    with ctx:
        fps = measure_fps(model, device, batch=batch, seconds=seconds)
        _set_scan(model, _no_scan)
        fps_no_scan = measure_fps(model, device, batch=batch, seconds=seconds)
    macs = count_macs(build_model(variant)).total
    return {
        "variant": variant,
        "device": device,
        "T": t,
        "batch": batch,
        "fps": fps,
        "scan_share": 1.0 - fps / fps_no_scan,
        "gmacs_per_s": fps / t * macs / 1e9,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="xs,s,b")
    ap.add_argument("--batch", type=int, default=16, help="windows per forward pass")
    ap.add_argument("--seconds", type=float, default=3.0, help="timing per measurement")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--no-cuda", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() and not args.no_cuda else [])
    print(
        f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, started {time.ctime()}"
    )
    rows = []
    for device in devices:
        for v in args.variants.split(","):
            batch = args.batch if device == "cuda" or v == "xs" else max(1, args.batch // 4)
            for amp in (False, True) if device == "cuda" else (False,):
                r = bench(v, device, batch, args.seconds, amp)
                r["dtype"] = "bf16-autocast" if amp else "float32"
                r["scan"] = auto_backend(device)
                rows.append(r)
                print(
                    f"{r['variant']:>3} {device:>4} {r['dtype']:>13} scan={r['scan']:<9}"
                    f" T={r['T']:>3} batch={r['batch']:>3}  {r['fps']:9.1f} frames/s"
                    f"  ({r['gmacs_per_s']:.1f} GMAC/s, scan {100 * r['scan_share']:.0f}% of time)",
                    flush=True,
                )
    for r in rows:
        if r["variant"] == "xs" and r["device"] == "cpu":
            print(
                f"XS on CPU: {r['fps']:.1f} frames/s = {r['fps'] / GOAL_XS_CPU:.2f} x the"
                f" {GOAL_XS_CPU:.0f} frames/s goal"
            )


if __name__ == "__main__":
    main()
