"""The mamba-ssm CUDA kernel, imported only when asked for (it is an optional extra)."""

from __future__ import annotations

import functools


@functools.cache
def _mamba_scan_fn():
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception:  # not installed, or built for another torch/CUDA
        return None
    return selective_scan_fn


def mamba_ssm_available() -> bool:
    """True when `mamba_ssm` imports (it still needs CUDA tensors to run)."""
    return _mamba_scan_fn() is not None


def selective_scan_mamba_ssm(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False
):
    """mamba-ssm's fused CUDA selective scan; inputs must be on a CUDA device."""
    fn = _mamba_scan_fn()
    if fn is None:
        raise RuntimeError("mamba_ssm is not importable")
    if D is not None:
        D = D.float()
    if delta_bias is not None:
        delta_bias = delta_bias.float()
    return fn(
        u.contiguous(),
        delta.contiguous(),
        A.contiguous(),
        B.contiguous(),
        C.contiguous(),
        D=D,
        z=None if z is None else z.contiguous(),
        delta_bias=delta_bias,
        delta_softplus=delta_softplus,
    )
