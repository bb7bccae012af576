"""Eval-only CPU fast path of one HGM block: the same function with folded weights, fewer passes.

Training keeps the plain modules (and their autograd); this path runs only in eval mode with
gradients off, on the CPU, for float32 models, with the eval kernel (ssm/mixer_kernel.py, a few
seconds to compile, no torch headers) built. Why it is faster (bench/lifter.py, README Speed):
the four scans of a block (ST and TS mixer, forward and backward) run in ONE kernel call
(`hgmamba_mixer_forward` in ssm/mixer_cpu.cpp) that reads the projections channel-last in
token storage order, so the flips, the temporal-first transpose and the (b, C, L) layout
copies are gone; parallel projections are stacked (both mixers' input
and output projections, the part and body hypergraph projections, the four scan projections in
one batched GEMM); W_x is folded into W_f2 / W_b2, BatchNorm into the projection before it,
the Mamba and spatial units' LayerNorm affines into their projections (one plain LN serves
both), layer scale into the output / fc2 weights, and the 2-way softmax fusion becomes a
sigmoid + lerp. In float32 the linears are oneDNN calls with the bias, GELU, tanh or residual
add in the GEMM epilogue; under autocast they are the plain ops, so autocast still lowers
their precision (the scan and its inputs stay float32, as in the modules). The model runs in
passes of a few windows so the intermediates stay in cache (`windows_per_chunk`).

Folded weights are built from the parameters on first use and rebuilt whenever a parameter
or buffer changes (keyed by data pointer and version counter), so `load_state_dict`, training
steps and `.to()` never leave a stale copy; checkpoints are untouched.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hgmamba_core.model.hypergcn import knn_frame_adjacency
from hgmamba_core.ssm import mixer_kernel

LOG2E = 1.0 / math.log(2.0)
# GEMM sizes are padded with zeros to a multiple of this: XS's inner width 99 and scan row 135
# ran the four scan projections 2.2x slower than 104 and 136 (MKL, 2-core AVX2 CPU, 1 thread).
GEMM_ALIGN = 8


def _round_up(n: int, k: int = GEMM_ALIGN) -> int:
    return -(-n // k) * k


def _pad(t: torch.Tensor, dim: int, size: int) -> torch.Tensor:
    """`t` zero-padded at the end of `dim` to `size`."""
    extra = size - t.shape[dim]
    if extra <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = extra
    return torch.cat([t, t.new_zeros(shape)], dim=dim)


@dataclass(frozen=True)
class MlpPack:
    """LN -> fc1 -> GELU -> fc2, with the unit's layer scale folded into fc2. Weights (out, in)."""

    norm: nn.LayerNorm
    w1: torch.Tensor
    b1: torch.Tensor
    w2: torch.Tensor  # fc2.weight * scale2
    b2: torch.Tensor


@dataclass(frozen=True)
class MambaPack:
    """Both bidirectional mixers of a ShuffleMamba unit, folded and stacked; the unit's LN affine
    is folded into w_id / w_act (they take the block's shared plain LN)."""

    inner: int
    inner_pad: int  # i + 1 rounded up to GEMM_ALIGN: act's chunk width (column i: ones)
    w_id: torch.Tensor  # (2i, D): W_id of st, ts
    b_id: torch.Tensor
    w_act: torch.Tensor  # (4p, D): W_f1, W_b1 of st, then of ts (scan k = 2 * mixer + dir)
    b_act: torch.Tensor
    ln_w: torch.Tensor  # (2, i) norm_id weight of st, ts
    ln_b: torch.Tensor
    unit_w: torch.Tensor  # (i,) ones and zeros for the plain norm_id (see _plain_layer_norm)
    unit_b: torch.Tensor
    eps: float
    w_scan: torch.Tensor  # (4, ld, p), (out, in) as nn.Linear: [W_2; W_x W_2] per scan, column
    # i its bias (times act's ones column), zero-padded (ld = i + R + 2n rounded up to GEMM_ALIGN)
    a2: torch.Tensor  # (4, i, n) = A log2(e)
    wdt: torch.Tensor  # (4, i, R)
    dt_bias: torch.Tensor  # (4, i)
    dskip: torch.Tensor  # (4, i)
    w_out: torch.Tensor  # (D, 2i) = [W_out_st | W_out_ts] * scale1
    b_out: torch.Tensor  # (D,)
    mlp: MlpPack


@dataclass(frozen=True)
class SpatialPack:
    """Part + body hypergraph convolutions, BN, projections and the unit's LN affine folded."""

    w: torch.Tensor  # (2D, D) = [s_part W_part; s_body W_body]
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
    eps: float  # of the plain LN shared by the Mamba and spatial units
    unit_w: torch.Tensor  # (D,) ones and zeros for that plain LN (see _plain_layer_norm)
    unit_b: torch.Tensor
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
    mlp, s2 = unit.mlp, unit.scale2
    return MlpPack(
        unit.norm2,
        mlp.fc1.weight.contiguous(),
        mlp.fc1.bias.clone(),
        (mlp.fc2.weight * s2[:, None]).contiguous(),
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
    parts = [m.in_proj.weight.split(i) for m in mixers]  # id, f, b
    biases = [m.in_proj.bias.split(i) for m in mixers]
    act = [(m, c) for m in (0, 1) for c in (1, 2)]
    scans = [(m.w_f2, m.ssm_f) if d == 0 else (m.w_b2, m.ssm_b) for m in mixers for d in (0, 1)]
    packed = [_scan_pack(w2, ssm) for w2, ssm in scans]
    ip, ld = _round_up(i + 1), _round_up(packed[0][0].shape[1])  # + 1: the ones column
    ssms = [ssm for _, ssm in scans]
    s1 = unit.scale1
    w_id = torch.cat([parts[0][0], parts[1][0]])
    g, beta = unit.norm1.weight, unit.norm1.bias  # folded: the block shares one plain LN
    # each activation chunk is padded to ip rows of zeros (GELU(0) = 0), and its column i is set
    # to ones before the scan GEMM, so that w_scan's row i adds the scan projection's bias
    w_act = torch.cat([_pad(parts[m][c] * g, 0, ip) for m, c in act])
    b_act = torch.cat([_pad(biases[m][c] + parts[m][c] @ beta, 0, ip) for m, c in act])
    return MambaPack(
        inner=i,
        inner_pad=ip,
        w_id=(w_id * g).contiguous(),
        b_id=torch.cat([biases[0][0], biases[1][0]]) + w_id @ beta,
        w_act=w_act.contiguous(),
        b_act=b_act,
        ln_w=torch.stack([m.norm_id.weight for m in mixers]),
        ln_b=torch.stack([m.norm_id.bias for m in mixers]),
        unit_w=torch.ones(i),
        unit_b=torch.zeros(i),
        eps=sm.st.norm_id.eps,
        w_scan=torch.stack(
            [_pad(torch.cat([_pad(w, 1, ld), _pad(b, 0, ld)[None]]), 0, ip).T for w, b in packed]
        ).contiguous(),
        a2=torch.stack([-torch.exp(s.A_log.float()) * LOG2E for s in ssms]).contiguous(),
        wdt=torch.stack([s.dt_proj.weight for s in ssms]).contiguous(),
        dt_bias=torch.stack([s.dt_proj.bias for s in ssms]).contiguous(),
        dskip=torch.stack([s.D for s in ssms]).contiguous(),
        w_out=(torch.cat([m.w_out.weight for m in mixers], dim=1) * s1[:, None]).contiguous(),
        b_out=(sm.st.w_out.bias + sm.ts.w_out.bias) * s1,
        mlp=_pack_mlp(unit),
    )


def _pack_spatial(unit: nn.Module) -> SpatialPack:
    convs = (unit.mixer.part, unit.mixer.body)
    g, beta = unit.norm1.weight, unit.norm1.bias  # folded: the block shares one plain LN
    ws, ks, bs = [], [], []
    for conv in convs:
        s, t = _bn_affine(conv.bn)
        k = conv.kernel()
        w = conv.proj.weight * s[:, None]
        ws.append(w * g)
        ks.append(k)
        bs.append(k.sum(dim=1)[:, None] * (conv.proj.bias * s + w @ beta)[None, :] + t[None, :])
    j = ks[0].shape[0]
    big = torch.zeros(2 * j, 2 * j, dtype=ks[0].dtype)
    for c, k in enumerate(ks):  # row (v, c) mixes rows (w, c): the layout of (J, 2, D)
        big[c::2, c::2] = k
    return SpatialPack(
        w=torch.cat(ws).contiguous(),
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
        w=(gcn.proj.weight * s[:, None]).contiguous(),
        b=gcn.proj.bias * s + t,  # rows of the k-NN kernel sum to 1
        scale=unit.scale1.clone(),
        mlp=_pack_mlp(unit),
    )


@torch.no_grad()
def pack_block(block: nn.Module) -> BlockPack:
    """Folded float32 weights of one HGMBlock (eval semantics: BN running statistics)."""
    fw, fb = block.fusion.weight, block.fusion.bias
    eps = block.mamba.norm1.eps
    if block.hg_spatial.norm1.eps != eps:
        raise ValueError("the Mamba and spatial units' LayerNorms differ in eps")
    d = fw.shape[1] // 2
    return BlockPack(
        eps=eps,
        unit_w=torch.ones(d),
        unit_b=torch.zeros(d),
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
    """Eval mode, no autograd, float32 CPU model and input (autocast allowed), the eval kernel
    (ssm/mixer_kernel.py) built or buildable (the first call builds it), no other scan backend
    asked for, and not switched off (`model.fast_eval = False` runs the modules, e.g. to time
    them)."""
    return (
        getattr(module, "fast_eval", True)
        and not module.training
        and not torch.is_grad_enabled()
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and module.joint_embed.weight.dtype == torch.float32  # autocast is fine, .to(bf16) not
        and all(_auto_scan(b.mamba.mixer.scan_backend) for b in module.blocks)
        and mixer_kernel.available()
    )


def _auto_scan(backend) -> bool:
    """The modules would pick their scan themselves (`auto`, `fused`, or a scan that says so,
    as lift's when_ready.NoWaitScan), so the fast path may stand in for them."""
    return backend in ("auto", "fused") or getattr(backend, "allows_fast_path", False)


def windows_per_chunk(t: int, j: int, rows: int = 4096) -> int:
    """Windows per pass so one pass holds about `rows` tokens, keeping the block's largest
    intermediates (about 1.5k floats a token) in cache rather than streaming through memory.
    Measured on the 2-core CPU (XS, 16 windows, CPU-time frames/s by windows per pass), 1
    thread: 1: 351, 2: 433, 4: 430, 8: 459, 16: 418; 2 threads: 1: 199, 2: 327, 4: 311,
    8: 379, 16: 334."""
    return max(1, rows // (t * j))


def token_order(t: int, j: int) -> torch.Tensor:
    """(2, T*J) int32: sequence position -> token row, spatial-first then temporal-first."""
    rows = torch.arange(t * j, dtype=torch.int32)
    return torch.stack([rows, rows.view(t, j).T.reshape(-1)]).contiguous()


def _layer_norm(x: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


def _plain_layer_norm(x: torch.Tensor, ones: torch.Tensor, zeros: torch.Tensor, eps: float):
    """LayerNorm without an affine over the last dim, given as weight 1 and bias 0: bitwise the
    same output, but ATen's CPU kernel without a weight took twice the time (1 thread:
    (3672, 64) 0.45 against 0.23 ms; the gate's (3672, 2, 99) 1.24 against 0.61 ms)."""
    return F.layer_norm(x, ones.shape, ones, zeros, eps)


@functools.cache
def _onednn_linear() -> bool:
    """oneDNN's linear with bias, GELU or a residual add in the GEMM epilogue is there."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _gemm_dtype(x: torch.Tensor) -> torch.dtype | None:
    """The dtype of the fused oneDNN linears for input x: float32 outside autocast, bf16 under
    CPU bf16 autocast (what autocast gives F.linear: bf16 operands and output), None where
    only the plain ops apply. Under autocast the plain path (F.linear, then GELU or the add
    as separate passes) ran the XS pass at 758 frames/s against 928 for MotionAGFormer-XS
    (AMD Zen 5, AVX512-BF16, 1 thread)."""
    if not _onednn_linear():
        return None
    if torch.is_autocast_enabled("cpu"):
        bf16 = torch.get_autocast_dtype("cpu") == torch.bfloat16 and _onednn_bf16_linear()
        return torch.bfloat16 if bf16 else None
    return torch.float32 if x.dtype == torch.float32 else None


@functools.cache
def _onednn_bf16_linear() -> bool:
    """oneDNN runs bf16 linears with epilogues here: it does on AVX-512 CPUs, but where its ISA
    is capped at AVX2 (no bf16 support: `ONEDNN_MAX_CPU_ISA`, or such a CPU) the call raises
    "could not create a primitive descriptor", so one tiny call decides."""
    a = torch.ones(2, 8, dtype=torch.bfloat16)
    w = torch.ones(4, 8, dtype=torch.bfloat16)
    b = torch.zeros(4, dtype=torch.bfloat16)
    try:
        torch.ops.mkldnn._linear_pointwise(a, w, b, "gelu", [], "none")
        torch.ops.mkldnn._linear_pointwise(a, w, b, "tanh", [], "")
    except RuntimeError:
        return False
    return True


def _linear(
    x: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None,
    gelu: bool = False,
    tanh: bool = False,
):
    """x @ w.T + b (no bias: b None), then GELU or tanh: one oneDNN call with the bias and the
    activation in the epilogue (measured 2-3x faster than addmm + gelu on (7344, 64) x (64, 256):
    the big output is written once; on AMD Zen 5, where MKL runs no AVX-512 code, oneDNN alone
    is 2.2x F.linear on (3672, 64) x (64, 128), the spatial unit's projection). In float32,
    though, ATen's in-place GELU after the GEMM beat oneDNN's erf epilogue (bitwise the same
    output): the XS pass 0.955x the time on Zen 5 both natively and held to AVX2 (1 thread,
    batch 16); under bf16 the epilogue stays (GELU of the float32 accumulator, not of its bf16
    rounding)."""
    dt = _gemm_dtype(x)
    if gelu and dt == torch.float32:
        return torch.ops.aten.gelu_(torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], ""))
    if dt is not None:
        attr, algo = ("gelu", "none") if gelu else ("tanh", "") if tanh else ("none", "")
        bias = None if b is None else b.to(dt)
        return torch.ops.mkldnn._linear_pointwise(x.to(dt), w.to(dt), bias, attr, [], algo)
    y = F.linear(x, w, b)
    return F.gelu(y) if gelu else torch.tanh(y) if tanh else y


def _linear_residual(x: torch.Tensor, a: torch.Tensor, w: torch.Tensor, b: torch.Tensor):
    """x + a @ w.T + b; in float32 the add is in the GEMM epilogue; under autocast the bf16
    product is added to the float32 stream, which stays float32 as in the modules."""
    dt = _gemm_dtype(a)
    if dt == torch.float32:
        return torch.ops.mkldnn._linear_pointwise.binary(a, x, w, b, "add")
    if dt is not None:
        return x + torch.ops.mkldnn._linear_pointwise(a.to(dt), w.to(dt), b.to(dt), "none", [], "")
    return x + F.linear(a, w, b)


def _mlp(x: torch.Tensor, p: MlpPack) -> torch.Tensor:
    """x + scale2 * MLP(LN(x)) for (N, D) rows."""
    hid = _linear(_layer_norm(x, p.norm), p.w1, p.b1, gelu=True)
    return _linear_residual(x, hid, p.w2, p.b2)


def _mamba(x: torch.Tensor, h: torch.Tensor, p: MambaPack, order: torch.Tensor) -> torch.Tensor:
    """Mamba residual unit on (N, D) rows in storage order; h = the plain LN of x."""
    n, i = x.shape[0], p.inner
    gate = _plain_layer_norm(_linear(h, p.w_id, p.b_id).view(n, 2, i), p.unit_w, p.unit_b, p.eps)
    gate = F.gelu(torch.addcmul(p.ln_b, gate, p.ln_w)).float().contiguous()
    act = _linear(h, p.w_act, p.b_act, gelu=True).view(n, 4, p.inner_pad)
    act[:, :, i] = 1.0  # the ones column: the GEMM adds the bias (the kernel adds none)
    scan_in = _scan_projections(act, p.w_scan, p.a2.shape[-1])
    low = act.dtype == torch.bfloat16  # under bf16 autocast: a 2^x of bf16 accuracy will do
    y = mixer_kernel.mixer_forward(scan_in, order, p.a2, p.wdt, p.dt_bias, p.dskip, gate, low)
    x = _linear_residual(x, y.view(n, 2 * i).to(act.dtype), p.w_out, p.b_out)
    return _mlp(x, p.mlp)


def _scan_projections(act: torch.Tensor, w: torch.Tensor, n_state: int) -> torch.Tensor:
    """(N, 4, K) x (4, ld, K)^T -> (4, N, ld), the kernel's input: four GEMMs reading act in
    place, in act's dtype (bf16 under autocast, as the modules' x_proj / dt_proj), into one
    buffer, float32 unless the kernel reads bf16. Measured, 1 thread, (3672, 104) x (104, 136):
    a bmm over the strided act.transpose(0, 1) 12.1 ms against 5.4 for these with AVX-512
    (6.2 against 5.5 with oneDNN and MKL held to AVX2); in bf16 1.3 ms, 2.2 with the copy to
    float32. In float32 oneDNN, then a copy into the buffer: on AMD Zen 5 all four 3.1 ms
    against 4.9-5.2 for MKL's mm straight into it (MKL runs no AVX-512 code on AMD: 80
    GFLOP/s, the same as held to AVX2); held to AVX2 4.9 against 5.1."""
    widen = act.dtype == torch.bfloat16 and not mixer_kernel.reads_bf16(n_state)
    dt = torch.float32 if widen else act.dtype
    out = torch.empty(4, act.shape[0], w.shape[1], dtype=dt, device=act.device)
    onednn = _gemm_dtype(act) == torch.float32
    with torch.autocast("cpu", enabled=False):
        w = w.to(act.dtype)
        for k in range(4):
            if onednn:
                out[k].copy_(_linear(act[:, k], w[k], None))
            elif widen:
                out[k].copy_(torch.mm(act[:, k], w[k].T))
            else:
                torch.mm(act[:, k], w[k].T, out=out[k])
    return out


def _spatial(x: torch.Tensor, h: torch.Tensor, p: SpatialPack, bt: int) -> torch.Tensor:
    """Spatial hypergraph residual unit; h = the plain LN of x."""
    n, d = x.shape
    j = n // bt
    z = _linear(h, p.w, None).view(bt, 2 * j, d)  # rows (joint, scale)
    y = torch.matmul(p.kernel.to(z.dtype), z).view(bt, j, 2 * d)
    y = F.relu_(y + p.bias.to(y.dtype)).view(n, 2, d)
    y = torch.add(y[:, 0], y[:, 1])  # bitwise y.sum(dim=1); in bf16 2.2x faster (0.58 / 1.3 ms)
    return _mlp(torch.addcmul(x, y, p.scale), p.mlp)


def _temporal(x: torch.Tensor, p: TemporalPack, b: int, t: int) -> torch.Tensor:
    n, d = x.shape
    j = n // (b * t)
    h = _layer_norm(x, p.norm)
    g = knn_frame_adjacency(h.view(b, t, j, d), p.k)
    z = _linear(h, p.w, p.b).view(b, t, j * d)
    y = F.relu_(torch.bmm(g.to(z.dtype), z)).view(n, d)
    return _mlp(torch.addcmul(x, y, p.scale), p.mlp)


def block_forward(x: torch.Tensor, p: BlockPack, order: torch.Tensor) -> torch.Tensor:
    """One HGM block in eval, (B, T, J, D) -> (B, T, J, D)."""
    b, t, j, d = x.shape
    rows = x.reshape(b * t * j, d)
    h = _plain_layer_norm(rows, p.unit_w, p.unit_b, p.eps)
    x_m = _mamba(rows, h, p.mamba, order)
    x_hg = _temporal(_spatial(rows, h, p.spatial, b * t), p.temporal, b, t)
    w = p.fuse_w.to(x_m.dtype)
    alpha = torch.sigmoid(torch.mv(x_m, w[:d]) + torch.mv(x_hg, w[d:]) + p.fuse_b)[:, None]
    return torch.lerp(x_hg, x_m, alpha.to(x_hg.dtype)).view(b, t, j, d)


def head_forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The regression head, LN -> Linear + tanh -> Linear, with tanh in the GEMM epilogue."""
    h = _layer_norm(x, model.norm)
    lin = model.rep[0]
    h = _linear(h, lin.weight, lin.bias, tanh=True)
    return model.head(h)
