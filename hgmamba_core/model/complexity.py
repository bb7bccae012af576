"""Parameter and MAC counts of a lifter, comparable with the paper's Table I.

Two numbers, kept apart:
- matmul MACs = FLOPs / 2 as torch.utils.flop_counter counts them (matmuls, linears, einsums,
  convolutions). This is what Table I counts: profilers of that kind (thop, fvcore) see only
  such ops and not inside the selective-scan kernel, so this is the number to compare.
- scan MACs: the selective scan's own cost, counted analytically as mamba-ssm's reference
  counter does, 9 FLOPs per (batch, channel, step, state) plus one per (batch, channel, step)
  for the D skip, halved. Reported beside the matmul MACs, never added in, so the first number
  stays comparable with the paper.
Elementwise ops (norms, activations) are not counted. The count runs on the meta device, so it
costs no real compute.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from hgmamba_core.model.mamba_stream import ShuffleMamba


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def scan_flops(batch: int, channels: int, length: int, d_state: int) -> int:
    """FLOPs of one selective scan (see the module docstring)."""
    return 9 * batch * channels * length * d_state + batch * channels * length


class _ScanCounter:
    """A stand-in for selective_scan that returns a tensor of the right shape and adds up FLOPs."""

    def __init__(self) -> None:
        self.flops = 0

    def __call__(self, u, delta, A, B, C, D=None, **_kw):
        b, d, length = u.shape
        self.flops += scan_flops(b, d, length, A.shape[1])
        return u * 1.0


@dataclass(frozen=True)
class MacCount:
    """MACs of one forward pass: what FlopCounterMode sees, and the scan counted analytically."""

    counted: int  # matmuls / linears / einsums, FLOPs / 2: comparable with Table I
    scan: int  # the selective scans, analytic FLOPs / 2: reported beside, not in Table I

    @property
    def matmul(self) -> int:
        """The Table I number (an alias of `counted`)."""
        return self.counted

    @property
    def total(self) -> int:
        """Both together, for throughput estimates (GMAC/s), not for comparison with the paper."""
        return self.counted + self.scan


def count_macs(model: nn.Module, frames: int | None = None, batch: int = 1) -> MacCount:
    """MACs of one forward pass over `batch` clips of `frames` frames (default: the model's T)."""
    cfg = model.cfg
    t = frames or cfg.frames
    meta = copy.deepcopy(model).to("meta").eval()
    counter = _ScanCounter()
    for m in meta.modules():
        if isinstance(m, ShuffleMamba):
            m.scan_backend = counter
    x = torch.zeros(batch, t, cfg.num_joints, cfg.dim_in, device="meta")
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        meta(x)
    return MacCount(counted=fc.get_total_flops() // 2, scan=counter.flops // 2)
