"""Lifter speed: frames/s of each HGMamba variant in eval mode over batched full windows.

Runs on the CPU (and on CUDA when present). Each variant is timed with the real selective scan
and with the scan replaced by a no-op, interleaved, several repeats each, keeping the fastest
repeat of each: on a shared machine the best repeat is the one least disturbed by other jobs,
and interleaving makes the scan's share comparable. All numbers come from this one run.

    python bench/lifter.py [--variants xs,s,b] [--batch 16] [--repeats 5] [--threads 2]
                           [--motionagformer PATH] [--bf16]

--motionagformer PATH (a local checkout of github.com/TaatiTeam/MotionAGFormer, never fetched
here) also times MotionAGFormer-XS (its configs/h36m/MotionAGFormer-xsmall.yaml: 12 layers,
dim 64, T=27) against HGMamba-XS on the same input in this process, interleaved, in float32
and under CPU bf16 autocast, and prints ours / theirs (ours: the CPU eval fast path; "ours
modules": the same weights through the plain modules, what training runs). --bf16 adds bf16 autocast on the CPU
to the per-variant table (it only pays on CPUs with AVX512-BF16 or AMX; others emulate it).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import statistics
import sys
import time
import types
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

from hgmamba_core.device import cpu_has_bf16
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


def _autocast(device: str, amp: bool):
    return torch.autocast(device, dtype=torch.bfloat16) if amp else nullcontext()


def bench(variant: str, device: str, batch: int, repeats: int, amp: bool) -> dict:
    model = build_model(variant).to(device).eval()
    cfg = model.cfg
    x = torch.randn(batch, cfg.frames, cfg.num_joints, cfg.dim_in, device=device)
    ctx = _autocast(device, amp)
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


def _import_motionagformer(path: Path) -> type:
    """MotionAGFormer's class from a local checkout. Its only non-torch import is timm's
    DropPath, built only when drop_path > 0; without timm a stand-in module is registered."""
    if not (path / "model" / "MotionAGFormer.py").is_file():
        sys.exit(f"--motionagformer: no model/MotionAGFormer.py under {path}")
    if importlib.util.find_spec("timm") is None:
        layers = types.ModuleType("timm.models.layers")
        layers.DropPath = nn.Identity  # eval with drop_path=0 never uses it
        for name in ("timm", "timm.models"):
            sys.modules[name] = types.ModuleType(name)
        sys.modules["timm.models.layers"] = layers
    sys.path.insert(0, str(path))
    return importlib.import_module("model.MotionAGFormer").MotionAGFormer


def motionagformer_xs(path: Path) -> nn.Module:
    """MotionAGFormer-XS as configs/h36m/MotionAGFormer-xsmall.yaml builds it."""
    cls = _import_motionagformer(path)
    return cls(
        n_layers=12, dim_in=3, dim_feat=64, dim_rep=512, dim_out=3, mlp_ratio=4,
        act_layer=nn.GELU, attn_drop=0.0, drop=0.0, drop_path=0.0, use_layer_scale=True,
        layer_scale_init_value=1e-5, use_adaptive_fusion=True, num_heads=8, qkv_bias=False,
        qkv_scale=None, hierarchical=False, num_joints=17, use_temporal_similarity=True,
        temporal_connection_len=1, use_tcn=False, graph_only=False, neighbour_num=2, n_frames=27,
    )  # fmt: skip


def compare_motionagformer(path: Path, batch: int, repeats: int, device: str = "cpu") -> None:
    """HGMamba-XS vs MotionAGFormer-XS, same (batch, 27, 17, 3) input, interleaved repeats,
    float32 then bf16 autocast; best repeat of each, and the median over repeats of the ratio
    within one repeat ("paired": the two runs of a repeat are adjacent in time, so a noisy
    neighbour slows both). HGMamba-XS runs its eval fast path on the CPU (model/fast_eval.py)
    and, for reference, its plain modules (same weights)."""
    ours = build_model("xs")
    modules = build_model("xs")
    modules.load_state_dict(ours.state_dict())
    modules.fast_eval = False
    models = {"HGMamba-XS": ours, "MotionAGFormer-XS": motionagformer_xs(path)}
    if device == "cpu":
        models["HGMamba-XS modules"] = modules
    for m in models.values():
        m.to(device).eval()
    x = torch.randn(batch, 27, 17, 3, device=device)
    for amp in (False, True):
        best = dict.fromkeys(models, float("inf"))
        paired = []
        with torch.inference_mode(), _autocast(device, amp):
            for m in models.values():  # warm-up
                _time_once(m, x, device)
            for _ in range(repeats):
                times = {name: _time_once(m, x, device) for name, m in models.items()}
                best = {k: min(best[k], times[k]) for k in best}
                paired.append(times["MotionAGFormer-XS"] / times["HGMamba-XS"])
        fps = {k: batch * 27 / v for k, v in best.items()}
        dtype = "bf16-autocast" if amp else "float32"
        parts = "  ".join(f"{k} {v:7.1f}" for k, v in fps.items())
        theirs = fps["MotionAGFormer-XS"]
        ratios = "  ".join(
            f"{k.replace('HGMamba-XS', 'ours')}/theirs {fps[k] / theirs:.2f}"
            for k in fps
            if k.startswith("HGMamba")
        )
        med = statistics.median(paired)
        print(f"{device} {dtype:>13} batch={batch} frames/s: {parts}  {ratios}  "
              f"ours/theirs paired median {med:.2f} (of {len(paired)})", flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="xs,s,b")
    ap.add_argument("--batch", type=int, default=16, help="windows per forward pass (xs)")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats per setting")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--no-cuda", action="store_true")
    ap.add_argument("--no-cpu", action="store_true", help="CUDA only (short GPU leases)")
    ap.add_argument("--bf16", action="store_true", help="also bf16 autocast on the CPU")
    ap.add_argument(
        "--motionagformer", type=Path, default=None, help="local MotionAGFormer checkout"
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [] if args.no_cpu else ["cpu"]
    devices += ["cuda"] if torch.cuda.is_available() and not args.no_cuda else []
    print(
        f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, {time.ctime()}, "
        f"CPU bf16 instructions: {'yes' if cpu_has_bf16() else 'no'}"
    )
    if args.motionagformer is not None:
        for device in devices:
            compare_motionagformer(args.motionagformer, args.batch, args.repeats, device)
    for device in devices:
        for v in filter(None, args.variants.split(",")):  # --variants "": comparison only
            # Same frames per batch for every variant on the CPU (xs: batch x 27 frames).
            batch = args.batch if device == "cuda" else max(1, args.batch * 27 // build_t(v))
            for amp in (False, True) if device == "cuda" or args.bf16 else (False,):
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
