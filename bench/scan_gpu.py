"""Time the selective-scan backends on a CUDA GPU: triton vs chunked vs the reference loop.

Every contender computes the same thing (softplus Δ with bias, D skip, silu(z) gate) from the
same float32 data; times are CUDA-event medians of forward (no grad) and forward+backward.
Prints one table and the chunked/triton and reference/triton ratios of this run, plus the
triton launch sweep (BLOCK_D x num_warps) when --sweep is given.

    python bench/scan_gpu.py                       # lifter shapes
    python bench/scan_gpu.py --shapes lifter --sweep --repeats 20
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch
from scan import make_inputs as cpu_inputs  # bench/ is on sys.path when run as a script

from hgmamba_core.ssm import selective_scan
from hgmamba_core.ssm.triton_scan import selective_scan_triton, triton_available

SHAPES = {  # name: (batch, d, L, n)
    "lifter": (128, 99, 17 * 27, 16),  # temporal-/spatial-first scans of the XS lifter
    "short": (512, 99, 17, 16),  # many short sequences
    "long": (16, 128, 17 * 81, 16),  # S-variant window length
}
SLOW_REFERENCE_L = 17 * 27  # the Python loop is skipped beyond this length (minutes otherwise)


def make_inputs(b, d, length, n, device):
    """bench/scan.py's inputs (same seed), on `device`, as leaves that need gradients."""
    return {k: v.to(device).requires_grad_() for k, v in cpu_inputs(b, d, length, n).items()}


def cuda_time(fn, repeats, warmup=3):
    """Median milliseconds of fn() over `repeats` runs, by CUDA events."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def timings(scan, inputs, repeats):
    """(forward ms, forward+backward ms) of one scan callable."""

    def fwd():
        with torch.no_grad():
            scan(**inputs)

    def fwd_bwd():
        y = scan(**inputs)
        torch.autograd.grad(y, list(inputs.values()), torch.ones_like(y))

    return cuda_time(fwd, repeats), cuda_time(fwd_bwd, repeats)


def backend(name):
    return lambda **kw: selective_scan(**kw, delta_softplus=True, backend=name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--sweep", action="store_true", help="also time triton launch configs")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("bench/scan_gpu.py needs a CUDA GPU (torch.cuda.is_available() is False)")
        return 1
    if not triton_available():
        print("bench/scan_gpu.py needs triton (pip install triton)")
        return 1
    print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}")
    print(f"{'shape':8} {'b,d,L,n':18} {'backend':10} {'fwd ms':>9} {'fwd+bwd ms':>11}")
    for shape in args.shapes:
        b, d, length, n = SHAPES[shape]
        inputs = make_inputs(b, d, length, n, "cuda")
        names = ["triton", "chunked"] + (["reference"] if length <= SLOW_REFERENCE_L else [])
        res = {}
        for name in names:
            reps = max(2, args.repeats // 5) if name == "reference" else args.repeats
            res[name] = timings(backend(name), inputs, reps)
            f, fb = res[name]
            print(f"{shape:8} {f'{b},{d},{length},{n}':18} {name:10} {f:9.3f} {fb:11.3f}")
        t_f, t_fb = res["triton"]
        for other in names[1:]:
            o_f, o_fb = res[other]
            print(f"{shape:8} {other}/triton: fwd {o_f / t_f:.1f}x, fwd+bwd {o_fb / t_fb:.1f}x")
        if args.sweep:
            for block_d in (16, 32, 64):
                for warps in (1, 2, 4, 8):
                    fn = lambda bd=block_d, w=warps, **kw: selective_scan_triton(  # noqa: E731
                        **kw, delta_softplus=True, block_d=bd, num_warps=w
                    )
                    f, fb = timings(fn, inputs, args.repeats)
                    print(f"{shape:8} sweep BLOCK_D={block_d:3} warps={warps}: {f:8.3f} {fb:9.3f}")
        del inputs
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
