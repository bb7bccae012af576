"""The plain sequential selective-scan recurrence: slow, simple, the test oracle."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def prepare_delta(delta: torch.Tensor, delta_bias: torch.Tensor | None, delta_softplus: bool):
    """Δ as the scan sees it: optional per-channel bias, then optional softplus."""
    if delta_bias is not None:
        delta = delta + delta_bias[None, :, None].to(delta.dtype)
    if delta_softplus:
        delta = F.softplus(delta)
    return delta


def selective_scan_reference(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False
):
    """h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t;  y_t = C_t·h_t + D u_t;  y *= silu(z).

    Shapes as mamba-ssm's selective_scan_fn: u, delta (b, d, L); A (d, n); B, C (b, n, L);
    D, delta_bias (d,); z (b, d, L). Computes in float32 (float64 for float64 input, so it can
    serve as a high-precision oracle), returns u's dtype.
    """
    dtype = u.dtype
    work = torch.float64 if dtype == torch.float64 else torch.float32
    u, delta, A, B, C = (t.to(work) for t in (u, delta, A, B, C))
    delta = prepare_delta(delta, delta_bias, delta_softplus)
    b, d, _ = u.shape
    h = u.new_zeros(b, d, A.shape[1])
    ys = []
    # unbind once: its backward is one stack, where indexing per step would cost O(L) each
    steps = zip(delta.unbind(-1), u.unbind(-1), B.unbind(-1), C.unbind(-1), strict=True)
    for dt, ut, bt, ct in steps:
        dt = dt[:, :, None]  # (b, d, 1)
        h = torch.exp(dt * A) * h + dt * bt[:, None, :] * ut[:, :, None]
        ys.append((h * ct[:, None, :]).sum(-1))
    y = torch.stack(ys, dim=-1)
    if D is not None:
        y = y + u * D.to(work)[None, :, None]
    if z is not None:
        y = y * F.silu(z.to(work))
    return y.to(dtype)
