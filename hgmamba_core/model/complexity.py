"""Parameter and MAC counts of a lifter, comparable with the paper's Table I.

MACs = FLOPs / 2 as torch.utils.flop_counter counts them (matmuls, linears, einsums), plus the
selective scan's own cost, which the counter cannot see inside our scan op: we count it as
mamba-ssm's reference counter does, 9 FLOPs per (batch, channel, step, state) plus one per
(batch, channel, step) for the D skip. Elementwise ops (norms, activations) are not counted, as
in the paper's tools. The count runs on the meta device, so it costs no real compute.
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
    """MACs of one forward pass: what FlopCounterMode sees, plus the scan counted analytically."""

    counted: int  # matmuls / linears / einsums, FLOPs / 2
    scan: int  # the selective scans, analytic FLOPs / 2

    @property
    def total(self) -> int:
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
