"""A CPU lift that never waits ~30 s for the training scan's compile.

A lift on the CPU runs the eval fast path (model/fast_eval.py), whose only kernel is the
torch-free mixer kernel (ssm/mixer_kernel.py): it compiles in a few seconds, so the fast path
builds it in the foreground at the first forward pass (one line on stderr with the time) and
the first run is as fast as a warm one; the training scan's torch extension (ssm/fused.py,
~30 s of CPU) is not needed. Where the mixer kernel cannot be built (no compiler:
`mixer_kernel.load` says so in one line) the lifter runs its PyTorch modules, whose scans
(`scan_without_waiting` sets them) take the torch extension only when a finished build is
already in the cache, else the PyTorch loop (`reference`: faster than `chunked` on the
lifter's short scans): a lift never compiles the extension.
"""

from __future__ import annotations

import torch

from hgmamba_core.ssm import fused, selective_scan

FALLBACK = "reference"  # faster than `chunked` on the lifter's short scans (L = 17 and 27)


def set_scan_backend(model: torch.nn.Module, backend) -> None:
    """Every scan of `model` runs `backend` (a name or a callable with selective_scan's shape)."""
    for m in model.modules():
        if hasattr(m, "scan_backend"):
            m.scan_backend = backend


def modules_scan() -> str:
    """The modules' CPU scan that needs no compile: the torch extension if built, else the loop."""
    return "fused" if fused.built_extension() is not None else FALLBACK


class NoWaitScan:
    """selective_scan's signature for a lifter's modules: on CPU tensors `modules_scan()`,
    chosen at the first call (so nothing is looked up unless the modules run), elsewhere
    `auto`. The eval fast path treats it as `auto` (`allows_fast_path`)."""

    allows_fast_path = True

    def __init__(self) -> None:
        self._cpu: str | None = None

    def backend(self, device: torch.device) -> str:
        if device.type != "cpu":
            return "auto"
        if self._cpu is None:
            self._cpu = modules_scan()
        return self._cpu

    def __call__(
        self, u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False
    ) -> torch.Tensor:
        backend = self.backend(u.device)
        return selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, backend)


def scan_without_waiting(model: torch.nn.Module, device: torch.device) -> bool:
    """Make a lifter never wait for a long compile: on the CPU its modules' scans become a
    NoWaitScan; the eval kernel itself is built (seconds, announced) at the first forward pass
    by the fast path. True when the scans were replaced (CPU)."""
    if device.type != "cpu":
        return False
    set_scan_backend(model, NoWaitScan())
    return True
