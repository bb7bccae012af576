"""Eval-only CPU fast path of one HGM block: the same function with folded weights, fewer passes.

Training keeps the plain modules (and their autograd); this path runs only in eval mode with
gradients off, on the CPU, with the fused scan kernel built. Why it is faster (bench/lifter.py,
README Speed): the four scans of a block (ST and TS mixer, forward and backward) run in ONE
kernel call that reads the projections channel-last in token storage order, so the flips, the
temporal-first transpose and the (b, C, L) layout copies are gone; parallel projections are
stacked into one matmul (both mixers' input projections; both mixers' output projections;
the part and body hypergraph projections); W_x is folded into W_f2 / W_b2, BatchNorm into the
projection before it, layer scale into the output / fc2 weights, the residual into the out
projection's addmm, and the 2-way softmax fusion into a sigmoid + lerp.

Folded weights are built from the parameters on first use and rebuilt whenever a parameter
or buffer changes (keyed by data pointer and version counter), so `load_state_dict`, training
steps and `.to()` never leave a stale copy; checkpoints are untouched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hgmamba_core.ssm.fused import load_extension

LOG2E = 1.0 / math.log(2.0)


@dataclass(frozen=True)
class MlpPack:
    """LN -> fc1 -> GELU -> fc2, with the unit's layer scale folded into fc2."""

    norm: nn.LayerNorm
    w1: torch.Tensor  # (D, H) = fc1.weight.T
    b1: torch.Tensor
    w2: torch.Tensor  # (H, D) = fc2.weight.T * scale2
    b2: torch.Tensor


@dataclass(frozen=True)
class MambaPack:
    """Both bidirectional mixers of a ShuffleMamba unit, folded and stacked."""

    norm: nn.LayerNorm
    inner: int
    w_in: torch.Tensor  # (D, 6i): [id_st | id_ts | f_st | b_st | f_ts | b_ts]
    b_in: torch.Tensor
    ln_w: torch.Tensor  # (2, i) norm_id weight of st, ts
    ln_b: torch.Tensor
    eps: float
    w_scan: tuple[torch.Tensor, ...]  # 4 x (i, i + R + 2n): [W_2^T | W_2^T W_x^T]
    b_scan: torch.Tensor  # (4, i + R + 2n)
    a2: torch.Tensor  # (4, i, n) = A log2(e)
    wdt: torch.Tensor  # (4, i, R)
    dt_bias: torch.Tensor  # (4, i)
    dskip: torch.Tensor  # (4, i)
    w_out: torch.Tensor  # (2i, D) = [W_out_st^T; W_out_ts^T] * scale1
    b_out: torch.Tensor  # (D,)
    mlp: MlpPack


@dataclass(frozen=True)
class SpatialPack:
    """Part + body hypergraph convolutions, BN and projections folded, one matmul each step."""

    norm: nn.LayerNorm
    w: torch.Tensor  # (D, 2D) = [W_part^T s_part | W_body^T s_body]
    kernel: torch.Tensor  # (2J, 2J): block-diagonal over (joint, scale) rows
    bias: torch.Tensor  # (J, 2D): per joint, row sums of the kernels times the folded biases
    scale: torch.Tensor  # (D,) layer scale
    mlp: MlpPack


@dataclass(frozen=True)
class TemporalPack:
    """k-NN temporal GCN with BN folded into its projection."""

    norm: nn.LayerNorm
    k: int
    w: torch.Tensor  # (D, D)
    b: torch.Tensor
    scale: torch.Tensor
    mlp: MlpPack


@dataclass(frozen=True)
class BlockPack:
    mamba: MambaPack
    spatial: SpatialPack
    temporal: TemporalPack
    fuse_w: torch.Tensor  # (2D,) logit difference weights
    fuse_b: float


def _bn_affine(bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval BatchNorm as y * s + t."""
    s = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    return s, bn.bias - bn.running_mean * s


def _pack_mlp(unit: nn.Module) -> MlpPack:
    mlp = unit.mlp
    s2 = unit.scale2
    return MlpPack(
        unit.norm2,
        mlp.fc1.weight.T.contiguous(),
        mlp.fc1.bias.clone(),
        (mlp.fc2.weight.T * s2).contiguous(),
        mlp.fc2.bias * s2,
    )


def _scan_pack(w2: nn.Linear, ssm: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """[u | x_proj(u)] = GELU(p) @ W + b for one SSM: W_x folded into the projection before."""
    wx = ssm.x_proj.weight  # (R + 2n, i)
    w = torch.cat([w2.weight.T, w2.weight.T @ wx.T], dim=1)
    return w.contiguous(), torch.cat([w2.bias, wx @ w2.bias])


def _pack_mamba(unit: nn.Module) -> MambaPack:
    sm = unit.mixer
    mixers = (sm.st, sm.ts)
    i = sm.st.inner
    parts = [m.in_proj.weight.split(i) for m in mixers]
    biases = [m.in_proj.bias.split(i) for m in mixers]
    order = [(0, 0), (1, 0), (0, 1), (0, 2), (1, 1), (1, 2)]  # (mixer, chunk: id f b)
    w_in = torch.cat([parts[m][c] for m, c in order]).T.contiguous()
    b_in = torch.cat([biases[m][c] for m, c in order])
    scans = [(m.w_f2, m.ssm_f) if d == 0 else (m.w_b2, m.ssm_b) for m in mixers for d in (0, 1)]
    packed = [_scan_pack(w2, ssm) for w2, ssm in scans]
    ssms = [ssm for _, ssm in scans]
    s1 = unit.scale1
    return MambaPack(
        norm=unit.norm1,
        inner=i,
        w_in=w_in,
        b_in=b_in,
        ln_w=torch.stack([m.norm_id.weight for m in mixers]),
        ln_b=torch.stack([m.norm_id.bias for m in mixers]),
        eps=sm.st.norm_id.eps,
        w_scan=tuple(w for w, _ in packed),
        b_scan=torch.stack([b for _, b in packed]).contiguous(),
        a2=torch.stack([-torch.exp(s.A_log.float()) * LOG2E for s in ssms]).contiguous(),
        wdt=torch.stack([s.dt_proj.weight for s in ssms]).contiguous(),
        dt_bias=torch.stack([s.dt_proj.bias for s in ssms]).contiguous(),
        dskip=torch.stack([s.D for s in ssms]).contiguous(),
        w_out=(torch.cat([m.w_out.weight.T for m in mixers]) * s1).contiguous(),
        b_out=(sm.st.w_out.bias + sm.ts.w_out.bias) * s1,
        mlp=_pack_mlp(unit),
    )


def _pack_spatial(unit: nn.Module) -> SpatialPack:
    convs = (unit.mixer.part, unit.mixer.body)
    ws, ks, bs = [], [], []
    for conv in convs:
        s, t = _bn_affine(conv.bn)
        k = conv.kernel()
        ws.append(conv.proj.weight.T * s)
        ks.append(k)
        bs.append(k.sum(dim=1)[:, None] * (conv.proj.bias * s)[None, :] + t[None, :])
    j = ks[0].shape[0]
    big = torch.zeros(2 * j, 2 * j, dtype=ks[0].dtype)
    for c, k in enumerate(ks):  # row (v, c) mixes rows (w, c): the layout of (J, 2, D)
        big[c::2, c::2] = k
    return SpatialPack(
        norm=unit.norm1,
        w=torch.cat(ws, dim=1).contiguous(),
        kernel=big,
        bias=torch.cat(bs, dim=1).contiguous(),
        scale=unit.scale1.clone(),
        mlp=_pack_mlp(unit),
    )


def _pack_temporal(unit: nn.Module) -> TemporalPack:
    gcn = unit.mixer
    s, t = _bn_affine(gcn.bn)
    return TemporalPack(
        norm=unit.norm1,
        k=gcn.k,
        w=(gcn.proj.weight.T * s).contiguous(),
        b=gcn.proj.bias * s + t,  # rows of the k-NN kernel sum to 1
        scale=unit.scale1.clone(),
        mlp=_pack_mlp(unit),
    )


@torch.no_grad()
def pack_block(block: nn.Module) -> BlockPack:
    """Folded float32 weights of one HGMBlock (eval semantics: BN running statistics)."""
    fw, fb = block.fusion.weight, block.fusion.bias
    return BlockPack(
        mamba=_pack_mamba(block.mamba),
        spatial=_pack_spatial(block.hg_spatial),
        temporal=_pack_temporal(block.hg_temporal),
        fuse_w=(fw[0] - fw[1]).contiguous(),
        fuse_b=float(fb[0] - fb[1]),
    )


def state_key(module: nn.Module) -> tuple:
    """Changes whenever any parameter or buffer of `module` is replaced or written in place."""
    return tuple(
        (t.data_ptr(), t._version, t.dtype) for t in (*module.parameters(), *module.buffers())
    )


def fast_path_available(x: torch.Tensor, module: nn.Module) -> bool:
    """Eval mode, no autograd, CPU float input, and the fused kernel built."""
    return (
        not module.training
        and not torch.is_grad_enabled()
        and x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.bfloat16)
        and load_extension() is not None
    )


def token_order(t: int, j: int) -> torch.Tensor:
    """(2, T*J) int32: sequence position -> token row, spatial-first then temporal-first."""
    rows = torch.arange(t * j, dtype=torch.int32)
    return torch.stack([rows, rows.view(t, j).T.reshape(-1)]).contiguous()


def _layer_norm(x: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


def _residual_mm(x: torch.Tensor, a: torch.Tensor, w: torch.Tensor, b: torch.Tensor):
    """x + a @ w + b, the residual add inside the matmul; under autocast the low-precision
    product is added to the float32 stream instead, which stays float32 as in the modules."""
    if torch.is_autocast_enabled("cpu"):
        return x + torch.addmm(b, a, w)
    return torch.addmm(x + b, a, w)


def _mlp(x: torch.Tensor, p: MlpPack) -> torch.Tensor:
    """x + scale2 * MLP(LN(x)) for (N, D) rows."""
    hid = F.gelu(torch.addmm(p.b1, _layer_norm(x, p.norm), p.w1))
    return _residual_mm(x, hid, p.w2, p.b2)


def _mamba(x: torch.Tensor, p: MambaPack, order: torch.Tensor) -> torch.Tensor:
    """Mamba residual unit on (N, D) rows in storage order."""
    n, i = x.shape[0], p.inner
    proj = torch.addmm(p.b_in, _layer_norm(x, p.norm), p.w_in)  # (N, 6i)
    gate = F.layer_norm(proj[:, : 2 * i].reshape(n, 2, i), (i,), eps=p.eps)
    gate = F.gelu(torch.addcmul(p.ln_b, gate, p.ln_w)).float().contiguous()
    act = F.gelu(proj[:, 2 * i :])
    ld = p.w_scan[0].shape[1]
    scan_in = torch.empty(4, n, ld, dtype=torch.float32)
    with torch.autocast("cpu", enabled=False):  # the scan's inputs stay float32 under autocast
        for k in range(4):
            torch.mm(act[:, k * i : (k + 1) * i].float(), p.w_scan[k], out=scan_in[k])
    y = load_extension().mixer_forward(
        scan_in, p.b_scan, order, p.a2, p.wdt, p.dt_bias, p.dskip, gate
    )
    x = _residual_mm(x, y.view(n, 2 * i), p.w_out, p.b_out)
    return _mlp(x, p.mlp)


def _spatial(x: torch.Tensor, p: SpatialPack, bt: int) -> torch.Tensor:
    n, d = x.shape
    j = n // bt
    z = torch.mm(_layer_norm(x, p.norm), p.w).view(bt, 2 * j, d)  # rows (joint, scale)
    y = torch.matmul(p.kernel.to(z.dtype), z).view(bt, j, 2 * d)
    y = F.relu(y + p.bias.to(y.dtype)).view(n, 2, d).sum(dim=1)
    return _mlp(torch.addcmul(x, y, p.scale), p.mlp)


def _temporal(x: torch.Tensor, p: TemporalPack, b: int, t: int) -> torch.Tensor:
    from hgmamba_core.model.hypergcn import knn_frame_adjacency

    n, d = x.shape
    j = n // (b * t)
    h = _layer_norm(x, p.norm)
    g = knn_frame_adjacency(h.view(b, t, j, d), p.k)
    z = torch.addmm(p.b, h, p.w).view(b, t, j * d)
    y = F.relu(torch.bmm(g.to(z.dtype), z)).view(n, d)
    return _mlp(torch.addcmul(x, y, p.scale), p.mlp)


def block_forward(x: torch.Tensor, p: BlockPack, order: torch.Tensor) -> torch.Tensor:
    """One HGM block in eval, (B, T, J, D) -> (B, T, J, D)."""
    b, t, j, d = x.shape
    rows = x.reshape(b * t * j, d)
    x_m = _mamba(rows, p.mamba, order)
    x_hg = _temporal(_spatial(rows, p.spatial, b * t), p.temporal, b, t)
    logit = torch.mv(x_m, p.fuse_w[:d].to(x_m.dtype)) + torch.mv(x_hg, p.fuse_w[d:].to(x_m.dtype))
    alpha = torch.sigmoid(logit + p.fuse_b)[:, None]
    return torch.lerp(x_hg, x_m, alpha.to(x_hg.dtype)).view(b, t, j, d)
