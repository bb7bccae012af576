"""One HGM block: Mamba stream || HyperGCN stream, adaptively fused (paper Fig. 1, Eq. 21)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hgmamba_core.model import fast_eval
from hgmamba_core.model.hypergcn import SpatialHyperGCN, TemporalKNNGCN
from hgmamba_core.model.mamba_stream import ShuffleMamba
from hgmamba_core.model.variants import VariantConfig


class MLP(nn.Module):
    """Linear -> GELU -> Linear, hidden = ratio * dim."""

    def __init__(self, dim: int, ratio: float):
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class ResidualUnit(nn.Module):
    """x + s1 * mixer(LN(x)); x + s2 * MLP(LN(x)): MotionAGFormer's pre-norm, layer-scaled unit."""

    def __init__(self, dim: int, mixer: nn.Module, mlp_ratio: float, scale_init: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mixer = mixer
        self.mlp = MLP(dim, mlp_ratio)
        self.scale1 = nn.Parameter(torch.full((dim,), scale_init))
        self.scale2 = nn.Parameter(torch.full((dim,), scale_init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.scale1 * self.mixer(self.norm1(x))
        return x + self.scale2 * self.mlp(self.norm2(x))


class HGMBlock(nn.Module):
    """Block `layer` (1-based) of `cfg.depth`; (B, T, J, D) -> (B, T, J, D).

    Mamba stream: one residual unit whose mixer is the parallel ST + TS shuffle-Mamba, with
    shuffle probability p = layer / N * P_N (Eq. 14). HyperGCN stream: a spatial (two-scale
    hypergraph) unit then a temporal (k-NN frames) unit. Fusion: alpha = softmax(W [X_m, X_hg]).
    """

    def __init__(self, cfg: VariantConfig, layer: int):
        super().__init__()
        d, r, s = cfg.dim, cfg.mlp_ratio, cfg.layer_scale_init
        p = layer / cfg.depth * cfg.shuffle_max
        mamba = ShuffleMamba(d, cfg.inner_dim, cfg.d_state, cfg.rank, p)
        self.mamba = ResidualUnit(d, mamba, r, s)
        self.hg_spatial = ResidualUnit(d, SpatialHyperGCN(d, cfg.num_joints), r, s)
        self.hg_temporal = ResidualUnit(d, TemporalKNNGCN(d, cfg.knn_k), r, s)
        self.fusion = nn.Linear(2 * d, 2)
        self._packed: tuple[tuple, fast_eval.BlockPack] | None = None  # eval fast-path cache

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_m = self.mamba(x)
        x_hg = self.hg_temporal(self.hg_spatial(x))
        alpha = torch.softmax(self.fusion(torch.cat([x_m, x_hg], dim=-1)), dim=-1)
        return x_m * alpha[..., 0:1] + x_hg * alpha[..., 1:2]

    def fast_forward(self, x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """forward() for eval on the CPU with the fused kernel (see fast_eval): same function,
        folded weights (rebuilt when any parameter or buffer changes), `order` from
        fast_eval.token_order."""
        return fast_eval.block_forward(x, self.packed(), order)

    def packed(self) -> fast_eval.BlockPack:
        """The folded weights of the fast path, rebuilt when any parameter or buffer changed."""
        key = fast_eval.state_key(self)
        if self._packed is None or self._packed[0] != key:
            self._packed = (key, fast_eval.pack_block(self))
        return self._packed[1]
