"""Random selective-scan inputs shared by the scan tests (reference, fused, Triton)."""

from __future__ import annotations

import torch


def scan_inputs(b, d, length, n=16, full=True, seed=0, delta_scale=0.5, a_scale=2.0):
    """CPU float32 tensors u, delta, A, B, C, D, z, delta_bias; D, z, bias None unless `full`."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=1.0):
        return torch.randn(*shape, generator=g) * scale

    x = {
        "u": r(b, d, length),
        "delta": r(b, d, length, scale=delta_scale),
        "A": -torch.rand(d, n, generator=g) * a_scale - 0.05,
        "B": r(b, n, length),
        "C": r(b, n, length),
        "D": r(d) if full else None,
        "z": r(b, d, length) if full else None,
        "delta_bias": r(d, scale=0.2) if full else None,
    }
    if not full:  # without softplus delta must stay positive for a decaying state
        x["delta"] = x["delta"].abs() + 0.01
    return x


NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def output_and_grads(inputs, scan, dtype=None):
    """y = scan(**inputs) and the gradient of every given input for a fixed random cotangent.

    An input the scan does not use (A when L = 1 in a parallel scan) gets a zero gradient.
    """
    leaves = {
        k: v.detach().to(dtype or v.dtype).requires_grad_()
        for k, v in inputs.items()
        if v is not None
    }
    y = scan(**{k: leaves.get(k) for k in NAMES})
    cot = torch.randn(y.shape, generator=torch.Generator().manual_seed(1)).to(y)
    grads = torch.autograd.grad(y, list(leaves.values()), cot, allow_unused=True)
    grads = [
        torch.zeros_like(v) if gr is None else gr
        for v, gr in zip(leaves.values(), grads, strict=True)
    ]
    return y, dict(zip(leaves, grads, strict=True))
