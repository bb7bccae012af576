"""The shuffled spatial-temporal Mamba stream (paper Eq. 5-6, 11-14, Algorithm 1)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from hgmamba_core.ssm import selective_scan

ScanBackend = str | Callable[..., torch.Tensor]


class SelectiveSSM(nn.Module):
    """One direction of a selective SSM: Δ, B, C from the input (Eq. 5-6), diagonal A, skip D.

    Works channel-first, (batch, d, L) in and out, the scan's own layout, so no transposes are
    needed around the scan. A = -exp(A_log) with the S4D-real init A[:, i] = -(i + 1);
    Δ = softplus(W_dt (W_x u)_dt + bias) with Mamba's log-uniform [1e-3, 1e-1] bias init.
    """

    def __init__(self, d: int, d_state: int = 16, dt_rank: int = 4):
        super().__init__()
        self.d_state, self.dt_rank = d_state, dt_rank
        self.x_proj = nn.Linear(d, dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(dt_rank, d, bias=True)
        a = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(d, 1)
        self.A_log = nn.Parameter(torch.log(a))
        self.D = nn.Parameter(torch.ones(d))
        self.reset_dt()

    @torch.no_grad()
    def reset_dt(self, dt_min: float = 1e-3, dt_max: float = 0.1) -> None:
        """Mamba's Δ init; called again after the model-wide weight init."""
        std = self.dt_rank**-0.5
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        d = self.dt_proj.bias.shape[0]
        dt = torch.exp(torch.rand(d) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=1e-4)
        self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus

    def forward(self, u: torch.Tensor, backend: ScanBackend = "auto") -> torch.Tensor:
        """u (batch, d, L) -> y (batch, d, L). `backend`: a selective_scan backend name, or a
        callable with selective_scan's signature (used by the MAC counter)."""
        dbc = torch.matmul(self.x_proj.weight.to(u.dtype), u)  # (b, r + 2n, L)
        r, n = self.dt_rank, self.d_state
        delta = torch.matmul(self.dt_proj.weight.to(u.dtype), dbc[:, :r])  # (b, d, L)
        scan = backend if callable(backend) else selective_scan
        kwargs = {} if callable(backend) else {"backend": backend}
        return scan(
            u,
            delta,
            -torch.exp(self.A_log.float()),
            dbc[:, r : r + n],
            dbc[:, r + n :],
            D=self.D.float(),
            delta_bias=self.dt_proj.bias.float(),
            delta_softplus=True,
            **kwargs,
        )


def _bmm_bias(bias: torch.Tensor | None, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b (+ bias) over a batch, broadcasting a 2-D operand; one BLAS call, no layout copy."""
    batch = max(a.shape[0] if a.ndim == 3 else 1, b.shape[0] if b.ndim == 3 else 1)
    a = a.expand(batch, *a.shape[-2:]) if a.ndim == 2 else a
    b = b.expand(batch, *b.shape[-2:]) if b.ndim == 2 else b
    return torch.bmm(a, b) if bias is None else torch.baddbmm(bias, a, b)


def _layer_norm_channels(x: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
    """LayerNorm over dim 1 of a channel-first (batch, C, L) tensor."""
    xc = x - x.mean(dim=1, keepdim=True)  # two plain passes beat var_mean's strided Welford
    scale = torch.rsqrt(xc.square().mean(dim=1, keepdim=True) + norm.eps)
    w, b = norm.weight.to(x.dtype)[:, None], norm.bias.to(x.dtype)[:, None]
    return torch.addcmul(b, xc * scale, w)


class BiMambaMixer(nn.Module):
    """Eq. 11-12 without the outer residual: (X_id * X_f + X_id * X_b) W_out.

    X_id = GELU(LN(X W_id)); X_f = SSM_f(GELU(X W_f1) W_f2); X_b = flip(SSM_b(flip(...))). The
    per-token projections commute with the flip, so only the scan input and output are flipped.
    W_id, W_f1, W_b1 are stored stacked in `in_proj`. Inside, everything is channel-first
    (batch, C, L), the scan's layout, so no transpose copies are made. Input/output (batch, L, D).
    """

    def __init__(self, dim: int, inner: int, d_state: int, dt_rank: int):
        super().__init__()
        self.inner = inner
        self.in_proj = nn.Linear(dim, 3 * inner)  # [W_id | W_f1 | W_b1]
        self.norm_id = nn.LayerNorm(inner)
        self.w_f2, self.w_b2 = nn.Linear(inner, inner), nn.Linear(inner, inner)
        self.ssm_f = SelectiveSSM(inner, d_state, dt_rank)
        self.ssm_b = SelectiveSSM(inner, d_state, dt_rank)
        self.w_out = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor, backend: ScanBackend = "auto") -> torch.Tensor:
        dt = x.dtype
        p = _bmm_bias(self.in_proj.bias.to(dt)[:, None], self.in_proj.weight.to(dt), x.mT)
        p_id, p_f, p_b = p.split(self.inner, dim=1)  # each (b, nD, L)
        x_id = F.gelu(_layer_norm_channels(p_id, self.norm_id))
        u_f = _bmm_bias(self.w_f2.bias.to(dt)[:, None], self.w_f2.weight.to(dt), F.gelu(p_f))
        u_b = _bmm_bias(self.w_b2.bias.to(dt)[:, None], self.w_b2.weight.to(dt), F.gelu(p_b))
        y = self.ssm_f(u_f, backend) + self.ssm_b(u_b.flip(-1), backend).flip(-1)
        g = x_id * y.to(x_id.dtype)  # (b, nD, L)
        return _bmm_bias(self.w_out.bias.to(dt), g.mT, self.w_out.weight.to(dt).T)  # (b, L, D)


def spatial_first(x: torch.Tensor) -> torch.Tensor:
    """(B, T, J, D) -> (B, T*J, D): joints of frame 0, then frame 1, ..."""
    b, t, j, d = x.shape
    return x.reshape(b, t * j, d)


def temporal_first(x: torch.Tensor) -> torch.Tensor:
    """(B, T, J, D) -> (B, J*T, D): all frames of joint 0, then joint 1, ..."""
    b, t, j, d = x.shape
    return x.transpose(1, 2).reshape(b, j * t, d)


class ShuffleMamba(nn.Module):
    """Spatial-first and temporal-first bidirectional mixers in parallel (Table IV #g2), summed.

    While training, with probability `shuffle_p` (Eq. 14) the joints of every frame are permuted
    by one random permutation before the scans and put back afterwards (Algorithm 1); in eval
    mode the order is always the skeleton's own, so eval is deterministic.
    """

    def __init__(self, dim: int, inner: int, d_state: int, dt_rank: int, shuffle_p: float):
        super().__init__()
        self.st = BiMambaMixer(dim, inner, d_state, dt_rank)
        self.ts = BiMambaMixer(dim, inner, d_state, dt_rank)
        self.shuffle_p = shuffle_p
        self.scan_backend: ScanBackend = "auto"  # complexity.count_macs swaps in a counter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, j, d = x.shape
        perm = None
        if self.training and self.shuffle_p > 0 and torch.rand(()).item() < self.shuffle_p:
            perm = torch.randperm(j, device=x.device)
            x = x[:, :, perm]
        y_st = self.st(spatial_first(x), self.scan_backend).reshape(b, t, j, d)
        y_ts = self.ts(temporal_first(x), self.scan_backend).reshape(b, j, t, d).transpose(1, 2)
        y = y_st + y_ts
        if perm is not None:
            y = y[:, :, torch.argsort(perm)]
        return y
