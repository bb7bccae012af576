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

    Input and output (batch, L, d). A = -exp(A_log) with the S4D-real init A[:, i] = -(i + 1);
    Δ = softplus(dt_proj(low-rank x) + bias) with Mamba's log-uniform [1e-3, 1e-1] bias init.
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

    def forward(self, x: torch.Tensor, backend: ScanBackend = "auto") -> torch.Tensor:
        """`backend` is a selective_scan backend name, or a callable with its signature."""
        dbc = self.x_proj(x)
        dt, b, c = torch.split(dbc, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.linear(dt, self.dt_proj.weight)  # bias goes to the scan as delta_bias
        scan = backend if callable(backend) else selective_scan
        kwargs = {} if callable(backend) else {"backend": backend}
        y = scan(
            x.transpose(1, 2),
            delta.transpose(1, 2),
            -torch.exp(self.A_log.float()),
            b.transpose(1, 2),
            c.transpose(1, 2),
            D=self.D.float(),
            delta_bias=self.dt_proj.bias.float(),
            delta_softplus=True,
            **kwargs,
        )
        return y.transpose(1, 2)


class BiMambaMixer(nn.Module):
    """Eq. 11-12 without the outer residual: (X_id * X_f + X_id * X_b) W_out.

    X_id = GELU(LN(X W_id)); X_f = SSM_f(GELU(X W_f1) W_f2); X_b the same on the flipped
    sequence, flipped back. Input/output (batch, L, D).
    """

    def __init__(self, dim: int, inner: int, d_state: int, dt_rank: int):
        super().__init__()
        self.w_id = nn.Linear(dim, inner)
        self.norm_id = nn.LayerNorm(inner)
        self.w_f1, self.w_f2 = nn.Linear(dim, inner), nn.Linear(inner, inner)
        self.w_b1, self.w_b2 = nn.Linear(dim, inner), nn.Linear(inner, inner)
        self.ssm_f = SelectiveSSM(inner, d_state, dt_rank)
        self.ssm_b = SelectiveSSM(inner, d_state, dt_rank)
        self.w_out = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor, backend: ScanBackend = "auto") -> torch.Tensor:
        x_id = F.gelu(self.norm_id(self.w_id(x)))
        x_f = self.ssm_f(self.w_f2(F.gelu(self.w_f1(x))), backend)
        xb = torch.flip(x, dims=[1])
        x_b = torch.flip(self.ssm_b(self.w_b2(F.gelu(self.w_b1(xb))), backend), dims=[1])
        return self.w_out(x_id * (x_f + x_b))


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
