"""Parallel-in-time selective scan in plain PyTorch (any device, autograd for free).

The recurrence h_t = a_t h_{t-1} + x_t is a scan over (a, x) pairs with the associative
combine (a1, x1) then (a2, x2) -> (a2 a1, a2 x1 + x2). Each chunk of K steps is scanned with
log2(K) Hillis-Steele rounds over all chunks at once; the chunk totals are scanned the same
way, recursively, and folded back in. Only products of decays in [0, 1] appear (no log-space
differences, no division), so large Δ·A gives exact zeros, never inf or nan.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hgmamba_core.ssm.reference import prepare_delta

CHUNK = 16


def _scan_in_chunks(a: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inclusive scan along dim -2 within each length-K block: (cumulative a, state from 0)."""
    k = x.shape[-2]
    step = 1
    while step < k:
        x = torch.cat(
            [x[..., :step, :], x[..., step:, :] + a[..., step:, :] * x[..., :-step, :]], -2
        )
        a = torch.cat([a[..., :step, :], a[..., step:, :] * a[..., :-step, :]], -2)
        step *= 2
    return a, x


def scan_pairs(a: torch.Tensor, x: torch.Tensor, chunk: int = CHUNK) -> torch.Tensor:
    """States h (..., L, n) of h_t = a_t h_{t-1} + x_t with h_{-1} = 0; a, x are (..., L, n)."""
    length = x.shape[-2]
    if length <= chunk:
        return _scan_in_chunks(a, x)[1]
    pad = (-length) % chunk
    if pad:
        a = F.pad(a, (0, 0, 0, pad), value=1.0)
        x = F.pad(x, (0, 0, 0, pad))
    lead = x.shape[:-2]
    nc = (length + pad) // chunk
    a = a.reshape(*lead, nc, chunk, x.shape[-1])
    x = x.reshape(*lead, nc, chunk, x.shape[-1])
    a_cum, h_local = _scan_in_chunks(a, x)
    # State at the end of every chunk, then shift by one: the state entering each chunk.
    ends = scan_pairs(a_cum[..., -1, :], h_local[..., -1, :], chunk)
    carry = F.pad(ends[..., :-1, :], (0, 0, 1, 0))
    h = h_local + a_cum * carry[..., None, :]
    return h.reshape(*lead, nc * chunk, x.shape[-1])[..., :length, :]


def selective_scan_chunked(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, chunk=CHUNK
):
    """Same contract as `selective_scan_reference`; float64 inputs stay float64."""
    dtype = u.dtype
    work = torch.float64 if dtype == torch.float64 else torch.float32
    u, delta, A, B, C = (t.to(work) for t in (u, delta, A, B, C))
    delta = prepare_delta(delta, delta_bias, delta_softplus)
    a = torch.exp(delta[..., None] * A[None, :, None, :])  # (b, d, L, n)
    x = (delta * u)[..., None] * B.transpose(1, 2)[:, None]  # (b, d, L, n)
    h = scan_pairs(a, x, chunk)
    y = torch.einsum("bdln,bnl->bdl", h, C)
    if D is not None:
        y = y + u * D.to(work)[None, :, None]
    if z is not None:
        y = y * F.silu(z.to(work))
    return y.to(dtype)
