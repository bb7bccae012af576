"""Selective scan (Mamba's S6 recurrence) with interchangeable backends.

`selective_scan` has the semantics and shapes of mamba-ssm's `selective_scan_fn`. Backends:
`reference` (sequential loop, the oracle), `chunked` (parallel-in-time PyTorch, any device),
`fused` (C++/OpenMP CPU kernel built on first use), `mamba_ssm` (CUDA, optional extra),
`triton` (Triton GPU kernels; CPU only under TRITON_INTERPRET=1, for tests).
`auto` picks mamba_ssm on CUDA when it imports, else triton when it imports (two kernel
launches per scan), else chunked (a few large kernels instead of ~8 per step); on the CPU fused
when it builds, else the reference loop, which measured faster than chunked on our CPUs
(bench/scan.py: chunked pays memory traffic on (b, d, L, n) tensors).
"""

from __future__ import annotations

import torch

from hgmamba_core.errors import HGMambaError
from hgmamba_core.ssm.chunked import selective_scan_chunked
from hgmamba_core.ssm.cuda import mamba_ssm_available, selective_scan_mamba_ssm
from hgmamba_core.ssm.fused import fused_available, selective_scan_fused
from hgmamba_core.ssm.reference import selective_scan_reference
from hgmamba_core.ssm.triton_scan import (
    selective_scan_triton,
    triton_available,
    triton_runnable_on,
)

BACKENDS = ("reference", "chunked", "fused", "mamba_ssm", "triton")

_IMPLS = {
    "reference": selective_scan_reference,
    "chunked": selective_scan_chunked,
    "fused": selective_scan_fused,
    "mamba_ssm": selective_scan_mamba_ssm,
    "triton": selective_scan_triton,
}


def available_backends() -> tuple[str, ...]:
    """Backends usable in this environment (builds the fused kernel if not built yet)."""
    names = ["reference", "chunked"]
    if fused_available():
        names.append("fused")
    if torch.cuda.is_available() and mamba_ssm_available():
        names.append("mamba_ssm")
    if triton_available() and (
        torch.cuda.is_available() or triton_runnable_on(torch.device("cpu"))
    ):
        names.append("triton")
    return tuple(names)


def auto_backend(device: torch.device | str | torch.Tensor = "cpu") -> str:
    """The backend `backend="auto"` uses for tensors on this device (or like this tensor)."""
    if isinstance(device, torch.Tensor):
        device = device.device
    device = torch.device(device)
    if device.type == "cuda":
        if mamba_ssm_available():
            return "mamba_ssm"
        return "triton" if triton_available() else "chunked"
    if device.type == "cpu":
        return "fused" if fused_available() else "reference"
    return "chunked"


def selective_scan(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, backend="auto"
):
    """y (b, d, L) from u, delta (b, d, L), A (d, n), B, C (b, n, L), D (d,), z (b, d, L)."""
    if backend == "auto":
        backend = auto_backend(u.device)
    elif backend not in BACKENDS:
        raise HGMambaError(
            f"unknown selective-scan backend {backend!r}; choose from auto, {', '.join(BACKENDS)}"
        )
    elif backend == "fused" and (u.device.type != "cpu" or not fused_available()):
        raise HGMambaError(
            "selective-scan backend 'fused' needs CPU tensors and a C++ compiler; use 'auto'"
        )
    elif backend == "mamba_ssm" and (u.device.type != "cuda" or not mamba_ssm_available()):
        raise HGMambaError(
            "selective-scan backend 'mamba_ssm' needs CUDA tensors and `pip install "
            "hgmamba[cuda]`; use 'auto'"
        )
    elif backend == "triton" and not (triton_available() and triton_runnable_on(u.device)):
        raise HGMambaError(
            "selective-scan backend 'triton' needs CUDA tensors and `pip install triton` "
            "(CPU tensors only with TRITON_INTERPRET=1); use 'auto'"
        )
    return _IMPLS[backend](u, delta, A, B, C, D, z, delta_bias, delta_softplus)


__all__ = [
    "BACKENDS",
    "auto_backend",
    "available_backends",
    "selective_scan",
    "selective_scan_chunked",
    "selective_scan_fused",
    "selective_scan_reference",
    "selective_scan_triton",
]
