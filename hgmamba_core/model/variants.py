"""Every HGMamba variant's settings in one place (paper Table I, plus `tiny` for tests).

Table I fixes N (blocks), D (channels) and T (frames) and reports the parameter and MAC counts.
The paper leaves the rest open; our choices, tuned so the counts land near Table I (see
`hgmamba info`), are:

- Mamba stream: the ST (spatial-first) and TS (temporal-first) bidirectional mixers run in
  parallel (Table IV #g2) on the same normalized input, each with its own weights; their outputs
  are summed into one residual, followed by one MLP (ratio 4). Expansion n of Eq. 11
  (`mamba_expand`) is 1; Δ is low-rank (`dt_rank` = ceil(D / 16), as Mamba does) rather than the
  rank-1 broadcast of Eq. 6; state size 16; S4D-real init of A.
- HyperGCN stream: a spatial sub-block (part + body hypergraph convolutions, Eq. 16-17) and a
  temporal sub-block (k = 2 nearest frames, Eq. 18-19), each pre-LayerNorm + layer-scale residual
  + its own MLP (ratio 4), as MotionAGFormer's graph stream.
- Head: LayerNorm, Linear(D -> 512) + tanh, Linear(512 -> 3).
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
    mamba_expand: float = 1.55  # n in Eq. 11
    d_state: int = 16
    dt_rank: int = 0  # 0 -> ceil(D / 16)
    knn_k: int = 2  # temporal neighbours (Eq. 18)
    shuffle_max: float = 0.5  # P_N of Eq. 14
    layer_scale_init: float = 1e-5

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
