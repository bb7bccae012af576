"""Selective scan (Mamba's S6 recurrence) with interchangeable backends.

`selective_scan` has the semantics and shapes of mamba-ssm's `selective_scan_fn`.
"""

from __future__ import annotations

from hgmamba_core.ssm.reference import selective_scan_reference

BACKENDS = ("reference",)


def selective_scan(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, backend="auto"
):
    """y (b, d, L) from u, delta (b, d, L), A (d, n), B, C (b, n, L), D (d,), z (b, d, L)."""
    if backend not in ("auto", *BACKENDS):
        raise ValueError(f"unknown selective-scan backend {backend!r}; choose from {BACKENDS}")
    return selective_scan_reference(u, delta, A, B, C, D, z, delta_bias, delta_softplus)


__all__ = ["BACKENDS", "selective_scan", "selective_scan_reference"]
