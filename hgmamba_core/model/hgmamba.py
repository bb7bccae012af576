"""The HGMamba lifter: joint embedding + positional embedding, N HGM blocks, regression head."""

from __future__ import annotations

import torch
from torch import nn

from hgmamba_core.errors import HGMambaError
from hgmamba_core.model import fast_eval, window_workers
from hgmamba_core.model.block import HGMBlock
from hgmamba_core.model.mamba_stream import SelectiveSSM
from hgmamba_core.model.variants import VariantConfig, get_variant


class HGMamba(nn.Module):
    """(B, T, J, 3) normalized x, y, confidence -> (B, T, J, 3) root-relative 3D, any T <= cfg.frames."""

    def __init__(self, cfg: VariantConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.joint_embed = nn.Linear(cfg.dim_in, d)
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.frames, cfg.num_joints, d))
        self.blocks = nn.ModuleList(HGMBlock(cfg, i + 1) for i in range(cfg.depth))
        self.norm = nn.LayerNorm(d)
        self.rep = nn.Sequential(nn.Linear(d, cfg.dim_rep), nn.Tanh())
        self.head = nn.Linear(cfg.dim_rep, cfg.dim_out)
        self.fast_eval = True  # eval on the CPU through model/fast_eval.py; False: the modules
        # fast path: windows split across single-threaded workers (model/window_workers.py)
        self.parallel_windows = True
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, SelectiveSSM):
                m.reset_dt()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[2] != self.cfg.num_joints or x.shape[3] != self.cfg.dim_in:
            raise HGMambaError(
                f"lifter input must be (batch, frames, {self.cfg.num_joints}, {self.cfg.dim_in}),"
                f" got {tuple(x.shape)}"
            )
        t = x.shape[1]
        if not 1 <= t <= self.cfg.frames:
            raise HGMambaError(
                f"HGMamba-{self.cfg.name} takes 1..{self.cfg.frames} frames per window, got {t}"
            )
        if fast_eval.fast_path_available(x, self):
            step = fast_eval.windows_per_chunk(t, self.cfg.num_joints)
            order = fast_eval.token_order(t, self.cfg.num_joints)
            workers = (
                window_workers.worker_count(x.shape[0], torch.get_num_threads())
                if self.parallel_windows
                else 1
            )
            if workers > 1:
                for blk in self.blocks:  # fold the weights here, not in two workers at once
                    blk.packed()
            return window_workers.map_windows(
                lambda c: self._forward_fast(c, order), x, step, workers
            )
        x = self.joint_embed(x) + self.pos_embed[:, :t]
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.rep(self.norm(x)))

    def _forward_fast(self, x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """forward() through the eval fast path (model/fast_eval.py), one chunk of windows."""
        x = self.joint_embed(x) + self.pos_embed[:, : x.shape[1]]
        for blk in self.blocks:
            x = blk.fast_forward(x, order)
        return fast_eval.head_forward(self, x)


def build_model(variant: str | VariantConfig) -> HGMamba:
    """An untrained lifter for a variant name ('xs', 's', 'b', 'tiny') or a config."""
    cfg = variant if isinstance(variant, VariantConfig) else get_variant(variant)
    return HGMamba(cfg)
