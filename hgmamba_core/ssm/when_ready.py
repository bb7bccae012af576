"""A lifter's CPU scan that never waits for the fused kernel's first compile.

Compiling the C++ scan takes ~30 s of a quiet 2-core CPU (minutes on a busy one), which a
newcomer's first `hgmamba lift` used to spend silently. `scan_without_waiting` gives the model
a scan that uses the fused kernel when a finished build is in the cache and otherwise the
PyTorch loop (`reference`: 2-2.5x slower on the lift stage here, the same numbers to ~4e-7),
while a detached low-priority process builds the kernel (hgmamba_core/background.py); the
build is looked for again at most once a second, so a long run switches to it when it lands.
"""

from __future__ import annotations

import sys
import time

import torch

from hgmamba_core import background
from hgmamba_core.ssm import fused, selective_scan

FALLBACK = "reference"  # faster than `chunked` on the lifter's short scans (L = 17 and 27)
RECHECK_S = 1.0


class ScanWhenReady:
    """selective_scan's signature; `fused` on CPU tensors once built, `fallback` until then."""

    def __init__(
        self, fallback: str = FALLBACK, recheck_s: float = RECHECK_S, notice: str | None = None
    ) -> None:
        """notice: the line printed (once) when the fallback first runs, i.e. when it matters,
        so an error about the input before the lift stays the only line."""
        self.fallback = fallback
        self.recheck_s = recheck_s
        self.notice = notice
        self._ready = False
        self._next_check = 0.0

    def backend(self) -> str:
        """The CPU backend for the next call (looks for the build at most every recheck_s)."""
        if not self._ready and time.monotonic() >= self._next_check:
            self._ready = fused.built_extension() is not None
            self._next_check = time.monotonic() + self.recheck_s
        if self._ready:
            return "fused"
        if self.notice:
            print(self.notice, file=sys.stderr, flush=True)
            self.notice = None
        return self.fallback

    def __call__(
        self, u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False
    ) -> torch.Tensor:
        backend = self.backend() if u.device.type == "cpu" else "auto"
        return selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, backend)


def set_scan_backend(model: torch.nn.Module, backend) -> None:
    """Every scan of `model` runs `backend` (a name or a callable with selective_scan's shape)."""
    for m in model.modules():
        if hasattr(m, "scan_backend"):
            m.scan_backend = backend


def scan_without_waiting(model: torch.nn.Module, device: torch.device) -> bool:
    """Make a CPU model's scans never wait for a compile, starting the background build when
    needed; True if the model got the fallback scan (which says so in one line when it first
    runs, unless the cache cannot be written: then no build comes and nothing is said)."""
    if device.type != "cpu" or not fused.build_pending():
        return False
    lock = fused.build_lock()
    running = background.is_running(lock)
    started = running or background.schedule("scan", [], lock, log=lock.with_suffix(".log"))
    notice = None
    if running:
        notice = (
            "hgmamba: the fast CPU scan kernel is still being built in the background; "
            "this run uses the slower PyTorch scan"
        )
    elif started:
        notice = (
            "hgmamba: building the fast CPU scan kernel in the background (once per machine, "
            "~30 s of CPU at low priority); this run uses the slower PyTorch scan"
        )
    set_scan_backend(model, ScanWhenReady(notice=notice))
    return True
