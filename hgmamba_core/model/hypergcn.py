"""The HyperGCN stream's mixers: two-scale hypergraph convolution (Eq. 8, 15-17) and the
k-nearest-frame temporal GCN (Eq. 7, 18-19)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hgmamba_core import skeleton


def hypergraph_kernel(incidence: torch.Tensor, edge_weight: torch.Tensor) -> torch.Tensor:
    """D_v^-1/2 H M D_e^-1 H^T D_v^-1/2 (Eq. 8) for incidence H (V, E) and diagonal M (E,).

    D_v and D_e are the plain vertex and hyperedge degrees of H; the kernel is symmetric.
    """
    h = incidence.to(edge_weight.dtype)
    dv = h.sum(dim=1).clamp(min=1.0).rsqrt()  # (V,)
    de = h.sum(dim=0).clamp(min=1.0).reciprocal()  # (E,)
    hn = h * dv[:, None]
    return (hn * (edge_weight * de)[None, :]) @ hn.T


def channel_batchnorm(bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    """BatchNorm over the last (channel) axis, all other axes pooled: independent of T and J."""
    shape = x.shape
    return bn(x.reshape(-1, shape[-1])).reshape(shape)


class HyperGraphConv(nn.Module):
    """ReLU(BN(H X W)) on one hypergraph (Eq. 16), features (B, T, J, D)."""

    def __init__(self, dim: int, edges: tuple[tuple[int, ...], ...], num_joints: int = 17):
        super().__init__()
        h = torch.from_numpy(skeleton.incidence_matrix(edges, num_joints))
        self.register_buffer("incidence", h, persistent=False)
        self.edge_weight = nn.Parameter(torch.ones(h.shape[1]))  # M, initialised to I
        self.proj = nn.Linear(dim, dim)
        self.bn = nn.BatchNorm1d(dim)

    def kernel(self) -> torch.Tensor:
        return hypergraph_kernel(self.incidence, self.edge_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel().to(x.dtype)
        y = torch.einsum("vw,btwd->btvd", k, self.proj(x))
        return F.relu(channel_batchnorm(self.bn, y))


class SpatialHyperGCN(nn.Module):
    """X_part + X_body (Eq. 16-17): part-scale (10 hyperedges) plus body-scale (5)."""

    def __init__(self, dim: int, num_joints: int = 17):
        super().__init__()
        self.part = HyperGraphConv(dim, skeleton.HYPEREDGES_PART, num_joints)
        self.body = HyperGraphConv(dim, skeleton.HYPEREDGES_BODY, num_joints)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.part(x) + self.body(x)


def knn_frame_adjacency(x: torch.Tensor, k: int = 2) -> torch.Tensor:
    """Normalized temporal kernel D^-1/2 (A + I) D^-1/2 (Eq. 7, 18) from (B, T, J, D) features.

    A links each frame to its k most similar other frames (dot product of whole-frame features,
    Eq. 18). Every row of A + I then has k + 1 ones, so the normalization is a constant 1/(k+1)
    whatever T is: one checkpoint serves any T up to its own. No gradient flows through the
    neighbour choice. Returns (B, T, T).
    """
    b, t = x.shape[:2]
    k = min(k, t - 1)
    eye = torch.eye(t, device=x.device, dtype=x.dtype).expand(b, t, t)
    if k <= 0:
        return eye.clone()
    with torch.no_grad():
        f = x.detach().float().reshape(b, t, -1)
        sim = f @ f.transpose(1, 2)
        sim = sim.masked_fill(torch.eye(t, device=x.device, dtype=torch.bool), float("-inf"))
        idx = sim.topk(k, dim=-1).indices
        adj = torch.zeros(b, t, t, device=x.device, dtype=x.dtype).scatter_(-1, idx, 1.0)
    return (adj + eye) / (k + 1)


class TemporalKNNGCN(nn.Module):
    """ReLU(BN(G_tp X W_tp)) (Eq. 19) with G_tp from the k nearest frames, features (B, T, J, D)."""

    def __init__(self, dim: int, k: int = 2):
        super().__init__()
        self.k = k
        self.proj = nn.Linear(dim, dim)
        self.bn = nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = knn_frame_adjacency(x, self.k)
        b, t, j, d = x.shape
        y = (g @ self.proj(x).reshape(b, t, j * d)).reshape(b, t, j, d)
        return F.relu(channel_batchnorm(self.bn, y))
