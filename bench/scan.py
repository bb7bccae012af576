"""Time the selective-scan backends against mambapy's pscan and a plain PyTorch loop.

Shapes are the lifter's: spatial-first and temporal-first scans both see L = 17·T tokens.
Every contender computes the same thing (softplus Δ, D skip, silu(z) gate) from the same data.
Prints one table and the fused-vs-pscan / fused-vs-loop ratios of this run.

    python bench/scan.py                 # both shapes, torch's default thread count
    python bench/scan.py --shapes issue --threads 2 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from hgmamba_core.ssm import available_backends, selective_scan, selective_scan_reference

SHAPES = {  # name: (batch, d, L, n)
    "xs": (16, 128, 17 * 27, 16),  # XS training batch, one scan direction
    "issue": (68, 256, 243, 16),  # the measured shape
}


def make_inputs(b, d, length, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "u": torch.randn(b, d, length, generator=g),
        "delta": torch.randn(b, d, length, generator=g) * 0.5 - 1.0,
        "A": -torch.rand(d, n, generator=g) * 4 - 0.1,
        "B": torch.randn(b, n, length, generator=g),
        "C": torch.randn(b, n, length, generator=g),
        "D": torch.randn(d, generator=g),
        "z": torch.randn(b, d, length, generator=g),
        "delta_bias": torch.randn(d, generator=g) * 0.1,
    }


def scan_pscan(u, delta, A, B, C, D, z, delta_bias):
    """mambapy's selective scan: its (B, L, D, N) Blelloch pscan plus the same extras."""
    from mambapy.pscan import pscan

    x = u.transpose(1, 2)  # (b, L, d)
    dt = F.softplus(delta + delta_bias[None, :, None]).transpose(1, 2)
    delta_a = torch.exp(dt.unsqueeze(-1) * A)  # (b, L, d, n)
    delta_bu = dt.unsqueeze(-1) * B.transpose(1, 2).unsqueeze(2) * x.unsqueeze(-1)
    hs = pscan(delta_a, delta_bu)  # (b, L, d, n)
    y = (hs @ C.transpose(1, 2).unsqueeze(-1)).squeeze(3) + D * x
    return (y * F.silu(z.transpose(1, 2))).transpose(1, 2)


def contenders():
    out = {}
    for name in available_backends():
        if name != "reference":
            out[name] = lambda backend=name, **kw: selective_scan(
                **kw, delta_softplus=True, backend=backend
            )
    out["loop"] = lambda **kw: selective_scan_reference(**kw, delta_softplus=True)
    out["mambapy.pscan"] = scan_pscan
    return out


def fwd_and_fwd_bwd(fn, inputs):
    """Two closures: forward without grad, and forward plus backward of sum(y)."""
    leaves = {k: v.clone().requires_grad_() for k, v in inputs.items()}

    def fwd():
        with torch.no_grad():
            fn(**inputs)

    def fwd_bwd():
        y = fn(**leaves)
        y.backward(torch.ones_like(y))
        for v in leaves.values():
            v.grad = None

    return fwd, fwd_bwd


def clock(fn):
    """(wall, CPU) seconds of one call; CPU time sums all threads of this process."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def bench_shape(fns, inputs, repeats):
    """Median wall and CPU time per contender; contenders take turns on each repeat, so a
    load change on this shared machine hits all of them alike."""
    jobs = {name: fwd_and_fwd_bwd(fn, inputs) for name, fn in fns.items()}
    for fwd, fwd_bwd in jobs.values():  # warm-up (and the fused kernel's build/load)
        fwd()
        fwd_bwd()
    samples = {name: [] for name in jobs}
    for _ in range(repeats):
        for name, (fwd, fwd_bwd) in jobs.items():
            samples[name].append((*clock(fwd), *clock(fwd_bwd)))
    return {
        name: [statistics.median(col) for col in zip(*rows, strict=True)]
        for name, rows in samples.items()
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave default)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip", nargs="*", default=[], help="contenders to leave out")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, CPU")
    print("times: median of --repeats runs, contenders interleaved; ratios use wall time")
    for shape in args.shapes:
        b, d, length, n = SHAPES[shape]
        inputs = make_inputs(b, d, length, n)
        print(f"\nshape {shape}: batch {b}, d {d}, L {length}, n {n}")
        fns = {k: v for k, v in contenders().items() if k not in args.skip}
        res = bench_shape(fns, inputs, args.repeats)
        print(f"{'backend':<16}{'fwd s':>10}{'fwd+bwd s':>12}{'fwd cpu s':>12}{'f+b cpu s':>12}")
        for name, (fw, fwc, fb, fbc) in res.items():
            print(f"{name:<16}{fw:>10.4f}{fb:>12.4f}{fwc:>12.4f}{fbc:>12.4f}")
        if "fused" in res:
            for other in ("mambapy.pscan", "loop", "chunked"):
                if other in res:
                    f, fb = (res[other][i] / res["fused"][i] for i in (0, 2))
                    print(f"fused vs {other:<14} fwd {f:6.1f}x   fwd+bwd {fb:6.1f}x faster")


if __name__ == "__main__":
    main()
