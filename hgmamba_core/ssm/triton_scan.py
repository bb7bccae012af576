"""The selective scan as Triton GPU kernels: one forward walk and one backward walk over L.

Each program owns one batch row and a block of BLOCK_D channels, keeps its (BLOCK_D, n) state
in registers and walks the sequence once, so a scan costs two kernel launches instead of the
~8 per step of a PyTorch loop or the many passes of the chunked scan. Only the core recurrence
h_t = exp(Δ_t A) h_{t-1} + Δ_t u_t B_t, y_t = C_t·h_t is a kernel; Δ's bias and softplus, the
D skip and the silu(z) gate stay in PyTorch, whose autograd differentiates them.

The forward saves nothing but its inputs; the backward first reruns the forward kernel storing
every state h_t (float32, (b, L, d, n)), then walks back from t = L-1 with the state gradient
g_t = C_t dy_t + exp(Δ_{t+1} A) g_{t+1}. So the big state buffer lives only during one scan's
backward, not from forward to backward for every layer. Channel sums (dB, dC) and the batch
sum (dA) go through per-block partial buffers summed in PyTorch: no atomics, deterministic.

Kernels use only masked loads/stores, exp, sums and a runtime-length loop, so they run the same
compiled on CUDA and on CPU tensors under TRITON_INTERPRET=1 (how the tests check them).
Triton is imported lazily: `triton_available()` says whether it imports here.
"""

from __future__ import annotations

import functools
import os

import torch
import torch.nn.functional as F

from hgmamba_core.errors import HGMambaError
from hgmamba_core.ssm.reference import prepare_delta

# Channels per program and warps: b * cdiv(d, 32) programs, 4 state values per thread. On an
# H200 at the lifter's shape, BLOCK_D 16..64 x 1..8 warps timed within run-to-run noise
# (bench/scan_gpu.py --sweep), so these are not tuned further.
BLOCK_D = 32
NUM_WARPS = 4


@functools.cache
def _kernels():
    """(forward, backward) jitted kernels, or None when triton does not import."""
    try:
        import triton
        import triton.language as tl
    except Exception:  # not installed, or broken against this torch
        return None

    @triton.jit
    def scan_fwd(
        u_ptr,  # (b, L, d) float32, like delta and y
        dt_ptr,
        a_ptr,  # (d, n)
        b_ptr,  # (b, L, n), like c
        c_ptr,
        y_ptr,
        h_ptr,  # (b, L, d, n) states, written only when STORE_H
        L,
        d,
        n,
        BLOCK_D: tl.constexpr,
        NP: tl.constexpr,
        STORE_H: tl.constexpr,
    ):
        pid_b = tl.program_id(0).to(tl.int64)
        offs_d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
        offs_n = tl.arange(0, NP)
        mask_d = offs_d < d
        mask_n = offs_n < n
        mask_dn = mask_d[:, None] & mask_n[None, :]
        A = tl.load(a_ptr + offs_d[:, None] * n + offs_n[None, :], mask=mask_dn, other=0.0)
        h = tl.zeros((BLOCK_D, NP), dtype=tl.float32)
        row_d = pid_b * L * d  # start of this batch row in (b, L, d)
        row_n = pid_b * L * n
        for t in range(L):
            ut = tl.load(u_ptr + row_d + t * d + offs_d, mask=mask_d, other=0.0)
            dt = tl.load(dt_ptr + row_d + t * d + offs_d, mask=mask_d, other=0.0)
            bt = tl.load(b_ptr + row_n + t * n + offs_n, mask=mask_n, other=0.0)
            ct = tl.load(c_ptr + row_n + t * n + offs_n, mask=mask_n, other=0.0)
            decay = tl.exp(dt[:, None] * A)
            h = decay * h + (dt * ut)[:, None] * bt[None, :]
            yt = tl.sum(h * ct[None, :], axis=1)
            tl.store(y_ptr + row_d + t * d + offs_d, yt, mask=mask_d)
            if STORE_H:
                base = (row_d + t * d) * n
                tl.store(h_ptr + base + offs_d[:, None] * n + offs_n[None, :], h, mask=mask_dn)

    @triton.jit
    def scan_bwd(
        u_ptr,  # (b, L, d), like delta, dy, du, ddelta
        dt_ptr,
        a_ptr,  # (d, n)
        b_ptr,  # (b, L, n), like c
        c_ptr,
        h_ptr,  # (b, L, d, n) states from the forward
        dy_ptr,
        du_ptr,
        ddt_ptr,
        da_ptr,  # (b, d, n) per-batch-row partials of dA
        db_ptr,  # (b, nblocks, L, n) per-channel-block partials of dB, like dc
        dc_ptr,
        L,
        d,
        n,
        BLOCK_D: tl.constexpr,
        NP: tl.constexpr,
    ):
        pid_b = tl.program_id(0).to(tl.int64)
        pid_d = tl.program_id(1)
        offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
        offs_n = tl.arange(0, NP)
        mask_d = offs_d < d
        mask_n = offs_n < n
        mask_dn = mask_d[:, None] & mask_n[None, :]
        offs_dn = offs_d[:, None] * n + offs_n[None, :]
        A = tl.load(a_ptr + offs_dn, mask=mask_dn, other=0.0)
        row_d = pid_b * L * d
        row_n = pid_b * L * n
        part = (pid_b * tl.num_programs(1) + pid_d) * L * n  # this block's dB/dC partial row
        g_next = tl.zeros((BLOCK_D, NP), dtype=tl.float32)  # exp(Δ_{t+1} A) g_{t+1}
        dA = tl.zeros((BLOCK_D, NP), dtype=tl.float32)
        h = tl.load(h_ptr + (row_d + (L - 1) * d) * n + offs_dn, mask=mask_dn, other=0.0)
        for i in range(L):
            t = L - 1 - i
            ut = tl.load(u_ptr + row_d + t * d + offs_d, mask=mask_d, other=0.0)
            dt = tl.load(dt_ptr + row_d + t * d + offs_d, mask=mask_d, other=0.0)
            dyt = tl.load(dy_ptr + row_d + t * d + offs_d, mask=mask_d, other=0.0)
            bt = tl.load(b_ptr + row_n + t * n + offs_n, mask=mask_n, other=0.0)
            ct = tl.load(c_ptr + row_n + t * n + offs_n, mask=mask_n, other=0.0)
            # h_{t-1}; zero before the first step (t - 1 = -1 is masked off)
            prev = (row_d + (t - 1) * d) * n
            h_prev = tl.load(h_ptr + prev + offs_dn, mask=mask_dn & (t > 0), other=0.0)
            decay = tl.exp(dt[:, None] * A)
            g = dyt[:, None] * ct[None, :] + g_next
            dct = tl.sum(dyt[:, None] * h, axis=0)
            dbt = tl.sum(g * (dt * ut)[:, None], axis=0)
            gb = tl.sum(g * bt[None, :], axis=1)
            dh_decay = g * decay * h_prev  # d(loss)/d(Δ_t A) elementwise
            dut = gb * dt
            ddtt = gb * ut + tl.sum(dh_decay * A, axis=1)
            dA += dh_decay * dt[:, None]
            tl.store(du_ptr + row_d + t * d + offs_d, dut, mask=mask_d)
            tl.store(ddt_ptr + row_d + t * d + offs_d, ddtt, mask=mask_d)
            tl.store(db_ptr + part + t * n + offs_n, dbt, mask=mask_n)
            tl.store(dc_ptr + part + t * n + offs_n, dct, mask=mask_n)
            g_next = decay * g
            h = h_prev
        tl.store(da_ptr + pid_b * d * n + offs_dn, dA, mask=mask_dn)

    return scan_fwd, scan_bwd


def triton_available() -> bool:
    """True when triton imports (running it still needs CUDA tensors, or TRITON_INTERPRET=1)."""
    return _kernels() is not None


def triton_runnable_on(device: torch.device) -> bool:
    """Whether the kernels can run on tensors of this device: CUDA, or CPU when interpreting."""
    if device.type == "cuda":
        return True
    return device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1"


def _padded_n(n: int) -> int:
    return max(1, 1 << (n - 1).bit_length())


def _launch_forward(u, dt, A, B, C, store_h: bool, block_d: int, num_warps: int):
    """y (b, L, d) and, when store_h, the states (b, L, d, n) of the core recurrence."""
    scan_fwd, _ = _kernels()
    b, length, d = u.shape
    n = A.shape[1]
    y = torch.empty_like(u)
    h = u.new_empty((b, length, d, n) if store_h else (1,))
    if u.numel() == 0:  # no program to launch (an empty grid is an error in triton)
        return y, h
    grid = (b, triton_cdiv(d, block_d))
    scan_fwd[grid](
        u, dt, A, B, C, y, h, length, d, n,
        BLOCK_D=block_d, NP=_padded_n(n), STORE_H=store_h, num_warps=num_warps,
    )  # fmt: skip
    return y, h


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)


class _TritonScan(torch.autograd.Function):
    """Core scan on float32 contiguous (b, L, d) / (b, L, n) tensors; returns y (b, L, d)."""

    @staticmethod
    def forward(ctx, u, dt, A, B, C, block_d, num_warps):
        y, _ = _launch_forward(u, dt, A, B, C, False, block_d, num_warps)
        ctx.save_for_backward(u, dt, A, B, C)
        ctx.launch = (block_d, num_warps)
        return y

    @staticmethod
    def backward(ctx, dy):
        u, dt, A, B, C = ctx.saved_tensors
        block_d, num_warps = ctx.launch
        _, scan_bwd = _kernels()
        _, h = _launch_forward(u, dt, A, B, C, True, block_d, num_warps)
        b, length, d = u.shape
        n = A.shape[1]
        nblocks = triton_cdiv(d, block_d)
        dy = dy.float().contiguous()
        du, ddt = torch.empty_like(u), torch.empty_like(u)
        dA = u.new_empty(b, d, n)
        dB = u.new_empty(b, nblocks, length, n)
        dC = u.new_empty(b, nblocks, length, n)
        if u.numel() == 0:
            return du, ddt, torch.zeros_like(A), dB.sum(1), dC.sum(1), None, None
        scan_bwd[(b, nblocks)](
            u, dt, A, B, C, h, dy, du, ddt, dA, dB, dC, length, d, n,
            BLOCK_D=block_d, NP=_padded_n(n), num_warps=num_warps,
        )  # fmt: skip
        del h
        return du, ddt, dA.sum(0), dB.sum(1), dC.sum(1), None, None


def selective_scan_triton(
    u,
    delta,
    A,
    B,
    C,
    D=None,
    z=None,
    delta_bias=None,
    delta_softplus=False,
    *,
    block_d: int = BLOCK_D,
    num_warps: int = NUM_WARPS,
):
    """Same contract as `selective_scan_reference`; computes in float32, returns u's dtype.

    Needs CUDA tensors (or CPU tensors with TRITON_INTERPRET=1 set before triton is imported).
    `block_d` (a power of two) and `num_warps` tune the launch; the defaults suit an H100.
    """
    if _kernels() is None:
        raise HGMambaError("selective-scan backend 'triton' needs `pip install triton`")
    if block_d < 1 or block_d & (block_d - 1):
        raise HGMambaError(f"block_d must be a power of two, got {block_d}")
    dtype = u.dtype
    work = torch.float32
    delta = prepare_delta(delta.to(work), delta_bias, delta_softplus)
    uf = u.to(work)

    def by_step(t):  # (b, c, L) -> contiguous float32 (b, L, c): one step's values adjacent
        return t.to(work).transpose(1, 2).contiguous()

    y = _TritonScan.apply(
        by_step(uf),
        by_step(delta),
        A.to(work).contiguous(),
        by_step(B),
        by_step(C),
        block_d,
        num_warps,
    ).transpose(1, 2)
    if D is not None:
        y = y + uf * D.to(work)[None, :, None]
    if z is not None:
        y = y * F.silu(z.to(work))
    return y.to(dtype)
