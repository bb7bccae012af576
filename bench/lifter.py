"""Lifter speed: frames/s of each HGMamba variant in eval mode over batched full windows.

Runs on the CPU (and on CUDA when present). Each variant is timed with the real selective scan
and with the scan replaced by a no-op, interleaved, several repeats each, keeping the fastest
repeat of each: on a shared machine the best repeat is the one least disturbed by other jobs,
and interleaving makes the scan's share comparable. All numbers come from this one run.

    python bench/lifter.py [--variants xs,s,b] [--batch 16] [--repeats 5] [--threads 2]
                           [--motionagformer PATH] [--motionbert PATH] [--bf16]

--motionagformer PATH (a local checkout of github.com/TaatiTeam/MotionAGFormer, never fetched
here) also times MotionAGFormer-XS (its configs/h36m/MotionAGFormer-xsmall.yaml: 12 layers,
dim 64, T=27) against HGMamba-XS on the same input in this process, interleaved, in float32
and under CPU bf16 autocast, and prints ours / theirs (ours: the CPU eval fast path; "ours
modules": the same weights through the plain modules, what training runs). --bf16 adds bf16
autocast on the CPU to the per-variant table (it only pays on CPUs with AVX512-BF16 or AMX;
others emulate it).

--motionbert PATH (a local checkout of github.com/Walter0807/MotionBERT, never fetched here)
times MotionBERT's DSTformer (configs/pose3d/MB_ft_h36m.yaml: dim 512, depth 5, T=243; and the
Lite config: dim 256) against HGMamba-B (T=243) and HGMamba-XS on the same 243 frames per call.
"""

from __future__ import annotations

import argparse
import functools
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


def _timed_side_by_side(
    entries: dict[str, tuple[nn.Module, torch.Tensor]], repeats: int, device: str, amp: bool
) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Each model on its own input, interleaved: (best seconds per model, every repeat's)."""
    rounds = []
    with torch.inference_mode(), _autocast(device, amp):
        for m, x in entries.values():  # warm-up
            _time_once(m, x, device)
        for _ in range(repeats):
            rounds.append({k: _time_once(m, x, device) for k, (m, x) in entries.items()})
    best = {k: min(r[k] for r in rounds) for k in entries}
    return best, rounds


def _fast_and_modules(variant: str) -> tuple[nn.Module, nn.Module]:
    """The variant with random weights, and a copy that runs the plain modules (fast_eval off)."""
    ours = build_model(variant)
    modules = build_model(variant)
    modules.load_state_dict(ours.state_dict())
    modules.fast_eval = False
    return ours, modules


def compare_motionagformer(
    path: Path,
    batch: int,
    repeats: int,
    device: str = "cpu",
    amps: tuple[bool, ...] = (False, True),
) -> None:
    """HGMamba-XS vs MotionAGFormer-XS, same (batch, 27, 17, 3) input, interleaved repeats,
    float32 then bf16 autocast; best repeat of each, and the median over repeats of the ratio
    within one repeat ("paired": the two runs of a repeat are adjacent in time, so a noisy
    neighbour slows both). HGMamba-XS runs its eval fast path on the CPU (model/fast_eval.py)
    and, for reference, its plain modules (same weights)."""
    ours, modules = _fast_and_modules("xs")
    models = {"HGMamba-XS": ours, "MotionAGFormer-XS": motionagformer_xs(path)}
    if device == "cpu":
        models["HGMamba-XS modules"] = modules
    for m in models.values():
        m.to(device).eval()
    x = torch.randn(batch, 27, 17, 3, device=device)
    for amp in amps:
        best, rounds = _timed_side_by_side(
            {k: (m, x) for k, m in models.items()}, repeats, device, amp
        )
        paired = [r["MotionAGFormer-XS"] / r["HGMamba-XS"] for r in rounds]
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


# MotionBERT's configs/pose3d: MB_ft_h36m.yaml (the paper's model) and MB_ft_h36m_global_lite.yaml
MOTIONBERT_CONFIGS = {
    "MotionBERT": {"dim_feat": 512, "mlp_ratio": 2},
    "MotionBERT-Lite": {"dim_feat": 256, "mlp_ratio": 4},
}
MOTIONBERT_T = 243


def motionbert(path: Path, name: str) -> nn.Module:
    """DSTformer from a local MotionBERT checkout, built as its configs (and lib/utils/learning.py
    load_backbone) build it: depth 5, 8 heads, dim_rep 512, 243 frames, LayerNorm eps 1e-6."""
    if not (path / "lib" / "model" / "DSTformer.py").is_file():
        sys.exit(f"--motionbert: no lib/model/DSTformer.py under {path}")
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
    cls = importlib.import_module("lib.model.DSTformer").DSTformer
    return cls(
        dim_in=3, dim_out=3, dim_rep=512, depth=5, num_heads=8, num_joints=17,
        maxlen=MOTIONBERT_T, norm_layer=functools.partial(nn.LayerNorm, eps=1e-6),
        **MOTIONBERT_CONFIGS[name],
    )  # fmt: skip


def compare_motionbert(
    path: Path, repeats: int, device: str = "cpu", amps: tuple[bool, ...] = (False, True)
) -> None:
    """HGMamba-B (T = 243, as MotionBERT) and HGMamba-XS against MotionBERT and MotionBERT-Lite,
    the same 243 frames per call for every model (one 243-frame window; XS: nine 27-frame ones),
    interleaved repeats, float32 then bf16 autocast; random weights (speed does not depend on
    them). Prints frames/s, parameters, and ours / theirs (best repeat, and paired median)."""
    ours = {"HGMamba-B": build_model("b"), "HGMamba-XS": build_model("xs")}
    theirs = {name: motionbert(path, name) for name in MOTIONBERT_CONFIGS}
    entries = {}
    for k, m in (ours | theirs).items():
        m.to(device).eval()
        t = m.cfg.frames if k in ours else MOTIONBERT_T
        entries[k] = (m, torch.randn(MOTIONBERT_T // t, t, 17, 3, device=device))
    params = {k: sum(p.numel() for p in m.parameters()) / 1e6 for k, (m, _) in entries.items()}
    print("parameters (M): " + "  ".join(f"{k} {v:.1f}" for k, v in params.items()))
    for amp in amps:
        best, rounds = _timed_side_by_side(entries, repeats, device, amp)
        fps = {k: MOTIONBERT_T / v for k, v in best.items()}
        dtype = "bf16-autocast" if amp else "float32"
        print(f"{device} {dtype:>13} 243 frames per call, frames/s: "
              + "  ".join(f"{k} {v:7.1f}" for k, v in fps.items()), flush=True)  # fmt: skip
        for mine in ours:
            cells = []
            for peer in theirs:
                med = statistics.median(r[peer] / r[mine] for r in rounds)
                cells.append(f"/{peer} {fps[mine] / fps[peer]:.2f} (paired {med:.2f})")
            print(f"    {mine}: " + "  ".join(cells), flush=True)


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
    ap.add_argument("--motionbert", type=Path, default=None, help="local MotionBERT checkout")
    ap.add_argument(
        "--no-bf16-compare",
        action="store_true",
        help="peer comparisons in float32 only (CPUs without AVX512-BF16 emulate bf16 slowly)",
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
    amps = (False,) if args.no_bf16_compare else (False, True)
    if args.motionagformer is not None:
        for device in devices:
            compare_motionagformer(args.motionagformer, args.batch, args.repeats, device, amps)
    if args.motionbert is not None:
        for device in devices:
            compare_motionbert(args.motionbert, args.repeats, device, amps)
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
