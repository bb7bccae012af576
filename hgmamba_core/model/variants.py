"""Every HGMamba variant's settings in one place (paper Table I, plus `tiny` for tests).

Table I fixes N (blocks), D (channels) and T (frames) and reports parameters and MACs. The
paper leaves the rest open; our choices, one architecture for all variants:

- Mamba stream: the ST (spatial-first, b(tj)d) and TS (temporal-first, b(jt)d) bidirectional
  mixers (Eq. 11-12) run in parallel (Table IV #g2) on the same normalized input, each with its
  own weights; their outputs are summed into one layer-scaled residual followed by one MLP
  (ratio 4). Expansion n of Eq. 11 (`mamba_expand`) is 1.55, the value that puts all three
  parameter counts within 1.5 % of Table I. Δ is low-rank (`dt_rank` = ceil(D / 16), as Mamba
  does) rather than Eq. 6's rank-1 broadcast; state size 16; S4D-real init of A.
- HyperGCN stream: a spatial unit (part + body hypergraph convolutions, Eq. 16-17) then a
  temporal unit (k = 2 nearest frames, Eq. 18-19), each pre-LayerNorm + layer-scaled residual +
  its own MLP (ratio 4), as MotionAGFormer's graph stream. BatchNorm over channels only.
- Head: LayerNorm, Linear(D -> 512) + tanh, Linear(512 -> 3).
- Layer scale (the paper gives none): initialised at 0.1, not MotionAGFormer's 1e-5. Measured on
  S1 (4 blocks, D = 64, 400 steps, batch 32, lr 1e-3): training error 118 mm with 0.1 against
  139-142 mm with 1e-5 (two seeds); with lr 2e-3, 113 mm (two seeds). 12 blocks, T = 9: 127 mm
  against 142 mm after 300 steps (0.1 and lr 2e-3 vs 1e-5 and lr 1e-3).

Measured with `hgmamba info` (params; MACs = matmul MACs from torch's FlopCounterMode + the
scan's analytic cost): XS 2.80 M / 1.24 + 0.16 G, S 6.05 M / 8.25 + 1.03 G, B 14.41 M /
60.2 + 3.8 G, against Table I's 2.8 M / 1.14 G, 6.1 M / 8.02 G, 14.2 M / 64.5 G. The matmul
MACs alone are within 10 % for all three; with the scan, XS is +23 % and S +16 %. No single
per-token architecture matches all three rows: Table I's XS has ~0.9 MACs per parameter per
token and B ~1.1, while every weight here is applied to every token (ratio >= 1 plus the scan).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from hgmamba_core.errors import HGMambaError


@dataclass(frozen=True)
class VariantConfig:
    """Hyper-parameters of one lifter; stored verbatim in every checkpoint."""

    name: str
    depth: int  # N, number of HGM blocks
    dim: int  # D, channels
    frames: int  # T, frames per window (largest T the positional embedding covers)
    num_joints: int = 17
    dim_in: int = 3  # x, y, confidence
    dim_out: int = 3
    dim_rep: int = 512  # D' of the regression head
    mlp_ratio: float = 4.0
    mamba_expand: float = 1.55  # n in Eq. 11 (see the module docstring)
    d_state: int = 16
    dt_rank: int = 0  # 0 -> ceil(D / 16)
    knn_k: int = 2  # temporal neighbours (Eq. 18)
    shuffle_max: float = 0.5  # P_N of Eq. 14
    layer_scale_init: float = 0.1  # see the module docstring

    @property
    def inner_dim(self) -> int:
        return int(round(self.mamba_expand * self.dim))

    @property
    def rank(self) -> int:
        return self.dt_rank or math.ceil(self.dim / 16)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> VariantConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


VARIANTS: dict[str, VariantConfig] = {
    "tiny": VariantConfig("tiny", depth=2, dim=16, frames=9),
    "xs": VariantConfig("xs", depth=12, dim=64, frames=27),
    "s": VariantConfig("s", depth=26, dim=64, frames=81),
    "b": VariantConfig("b", depth=16, dim=128, frames=243),
}

# Table I of the paper: what the counts should come close to.
PAPER_COUNTS: dict[str, dict[str, float]] = {
    "xs": {"params": 2.8e6, "macs": 1.14e9},
    "s": {"params": 6.1e6, "macs": 8.02e9},
    "b": {"params": 14.2e6, "macs": 64.5e9},
}

PUBLIC_VARIANTS = ("xs", "s", "b")


def get_variant(name: str) -> VariantConfig:
    """The config for a variant name (case-insensitive); unknown names list the valid ones."""
    key = str(name).strip().lower()
    if key not in VARIANTS:
        raise HGMambaError(f"unknown lifter variant '{name}': choose one of {', '.join(VARIANTS)}")
    return VARIANTS[key]
