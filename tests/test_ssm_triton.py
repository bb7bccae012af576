"""The Triton selective scan against the reference: outputs and every gradient.

Without a GPU the kernels run under Triton's interpreter (CPU tensors, numpy), which must be
switched on by TRITON_INTERPRET=1 before any kernel is defined. So `test_interpreter_suite`
reruns this file in a subprocess with that variable set, where the `interp` tests below run;
in the parent process they skip. `TRITON_INTERPRET=1 python -m pytest tests/test_ssm_triton.py`
runs them directly. The `cuda_only` tests check the compiled kernels on a GPU.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ssm_inputs import output_and_grads, scan_inputs

import hgmamba_core.ssm as ssm
from hgmamba_core.errors import HGMambaError
from hgmamba_core.ssm.triton_scan import selective_scan_triton

HAVE_TRITON = importlib.util.find_spec("triton") is not None
INTERPRETING = os.environ.get("TRITON_INTERPRET") == "1"
interp = pytest.mark.skipif(
    not (INTERPRETING and HAVE_TRITON),
    reason="runs under TRITON_INTERPRET=1 (test_interpreter_suite starts that subprocess)",
)
cuda_only = pytest.mark.skipif(
    not (torch.cuda.is_available() and HAVE_TRITON and not INTERPRETING),
    reason="needs a CUDA GPU and triton",
)


def make_inputs(b, d, length, n=16, full=True, seed=0, delta_scale=0.5, a_scale=2.0, device="cpu"):
    """Random float32 inputs; D, z and delta_bias are None unless `full`."""
    x = scan_inputs(b, d, length, n, full, seed, delta_scale, a_scale)
    return {k: None if v is None else v.to(device) for k, v in x.items()}


def run(inputs, softplus, backend="reference", dtype=None, **kw):
    """Output and gradients (for a fixed random cotangent) of one backend."""
    if backend == "reference":
        scan = functools.partial(ssm.selective_scan_reference, delta_softplus=softplus)
    elif backend == "triton_fn":
        scan = functools.partial(selective_scan_triton, delta_softplus=softplus, **kw)
    else:
        scan = functools.partial(ssm.selective_scan, delta_softplus=softplus, backend=backend)
    return output_and_grads(inputs, scan, dtype)


def rel_err(a, b):
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def assert_matches_reference(inputs, softplus, tol=1e-4, **kw):
    y_ref, g_ref = run(inputs, softplus, "reference", dtype=torch.float64)
    y, g = run(inputs, softplus, "triton_fn", **kw)
    assert y.dtype == inputs["u"].dtype
    assert torch.isfinite(y).all()
    assert rel_err(y, y_ref) <= tol
    for name in g_ref:
        assert g[name].dtype == inputs[name].dtype, name
        assert torch.isfinite(g[name]).all(), name
        assert rel_err(g[name], g_ref[name]) <= tol, name


# ---- run in the parent process (no interpreter needed) ------------------------------------


@pytest.mark.skipif(not HAVE_TRITON, reason="triton is not installed")
@pytest.mark.skipif(INTERPRETING, reason="this is the parent of the interpreter run")
def test_interpreter_suite():
    """Reruns this file with TRITON_INTERPRET=1; fails with the child's report if it fails."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__]
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    report = proc.stdout[-6000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, report
    assert " passed" in proc.stdout and "failed" not in proc.stdout, report


@pytest.mark.skipif(INTERPRETING, reason="checks the refusal without the interpreter")
def test_triton_backend_on_cpu_is_a_one_line_error():
    args = {k: v for k, v in make_inputs(1, 2, 5).items()}
    with pytest.raises(HGMambaError, match="triton"):
        ssm.selective_scan(**args, backend="triton")


def test_auto_backend_on_cuda_prefers_mamba_ssm_then_triton(monkeypatch):
    monkeypatch.setattr(ssm, "mamba_ssm_available", lambda: True)
    assert ssm.auto_backend("cuda") == "mamba_ssm"
    monkeypatch.setattr(ssm, "mamba_ssm_available", lambda: False)
    monkeypatch.setattr(ssm, "triton_available", lambda: True)
    assert ssm.auto_backend("cuda") == "triton"
    monkeypatch.setattr(ssm, "triton_available", lambda: False)
    assert ssm.auto_backend("cuda") == "chunked"
    assert "triton" in ssm.BACKENDS


@pytest.mark.skipif(not HAVE_TRITON, reason="triton is not installed")
def test_bad_block_size_is_an_error():
    args = make_inputs(1, 2, 5)
    with pytest.raises(HGMambaError, match="power of two"):
        selective_scan_triton(**args, block_d=24)


# ---- interpreter: the kernels' arithmetic on the CPU ---------------------------------------


@interp
@pytest.mark.parametrize("softplus", [True, False])
@pytest.mark.parametrize(
    ("b", "d", "length", "block_d"),
    [
        (2, 99, 17, 32),  # d not a multiple of the block: 4 blocks, the last one ragged
        (3, 40, 27, 16),
        (1, 20, 243, 8),  # long sequence, 3 blocks of 8
        (2, 5, 1, 32),  # a single step
    ],
)
def test_matches_reference(b, d, length, block_d, softplus):
    inputs = make_inputs(b, d, length, full=softplus, seed=length + d)
    assert_matches_reference(inputs, softplus, block_d=block_d)


@interp
@pytest.mark.parametrize("n", [1, 5, 16])
def test_state_sizes(n):
    """n need not be 16 or a power of two: the state axis is padded and masked."""
    assert_matches_reference(make_inputs(2, 9, 27, n=n), True, block_d=8)


@interp
def test_large_delta_times_a_is_finite():
    """exp(Δ A) underflows to exactly 0 for Δ·A of -1000s: no inf or nan anywhere."""
    inputs = make_inputs(2, 12, 27, delta_scale=30.0, a_scale=60.0, seed=3)
    assert_matches_reference(inputs, True, block_d=8)
    inputs["delta"] = inputs["delta"].abs() * 10 + 5  # Δ in [5, ~1000], no softplus
    inputs["D"] = inputs["z"] = inputs["delta_bias"] = None
    assert_matches_reference(inputs, False, block_d=8)


@interp
def test_half_inputs_compute_in_float32():
    """Lower-precision inputs (autocast) are scanned in float32 and come back in their dtype."""
    inputs = make_inputs(2, 10, 17, seed=4)
    half = {k: v.to(torch.bfloat16) for k, v in inputs.items()}
    y_ref, _ = run(half, True, "reference", dtype=torch.float64)
    y, g = run(half, True, "triton_fn", block_d=8)
    assert y.dtype == torch.bfloat16
    assert all(g[k].dtype == torch.bfloat16 for k in g)
    assert rel_err(y, y_ref) <= 2e-2


@interp
def test_through_selective_scan_dispatch():
    """backend='triton' via the public entry point, with the model's non-contiguous B, C."""
    inputs = make_inputs(2, 33, 17, seed=6)
    dbc = torch.randn(2, 40, 17)
    inputs["B"], inputs["C"] = dbc[:, 4:20], dbc[:, 20:36]  # slices, as SelectiveSSM passes
    assert "triton" in ssm.available_backends()
    y_ref, g_ref = run(inputs, True, "reference", dtype=torch.float64)
    y, g = run(inputs, True, "triton")
    assert rel_err(y, y_ref) <= 1e-4
    assert all(rel_err(g[k], g_ref[k]) <= 1e-4 for k in g_ref)
    with torch.no_grad():
        y_ng = ssm.selective_scan(**inputs, delta_softplus=True, backend="triton")
    torch.testing.assert_close(y_ng, y.detach())


@interp
def test_empty_sequence():
    inputs = {k: v.requires_grad_() for k, v in make_inputs(2, 3, 0).items()}
    y = selective_scan_triton(**inputs, delta_softplus=True)
    assert y.shape == (2, 3, 0)
    y.sum().backward()
    assert inputs["A"].grad.shape == (3, 16) and not inputs["A"].grad.any()


@interp
def test_partial_requires_grad():
    """Only some inputs need gradients (frozen A, say): the others come back as None."""
    inputs = make_inputs(1, 6, 9, seed=7)
    u = inputs["u"].clone().requires_grad_()
    args = {**inputs, "u": u}
    y = ssm.selective_scan(**args, delta_softplus=True, backend="triton")
    y.sum().backward()
    u_ref = inputs["u"].clone().double().requires_grad_()
    ref_args = {k: v.double() for k, v in inputs.items()}
    ssm.selective_scan_reference(**{**ref_args, "u": u_ref}, delta_softplus=True).sum().backward()
    assert rel_err(u.grad, u_ref.grad) <= 1e-4


# ---- compiled on a GPU --------------------------------------------------------------------


@cuda_only
@pytest.mark.parametrize("softplus", [True, False])
def test_cuda_matches_reference_at_lifter_shape(softplus):
    inputs = make_inputs(8, 99, 459, full=softplus, device="cuda")
    y_ref, g_ref = run(inputs, softplus, "reference", dtype=torch.float64)
    y, g = run(inputs, softplus, "triton")
    assert y.device.type == "cuda"
    assert rel_err(y, y_ref) <= 1e-4
    for name in g_ref:
        assert rel_err(g[name], g_ref[name]) <= 1e-4, name


@cuda_only
@pytest.mark.parametrize(("block_d", "n"), [(16, 16), (64, 16), (32, 5)])
def test_cuda_other_launches(block_d, n):
    inputs = make_inputs(3, 70, 100, n=n, device="cuda", seed=2)
    assert_matches_reference(inputs, True, block_d=block_d)


@cuda_only
def test_cuda_autocast_bf16():
    inputs = make_inputs(4, 99, 51, device="cuda", seed=9)
    u = inputs["u"].clone().requires_grad_()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y = ssm.selective_scan(**{**inputs, "u": u.bfloat16()}, delta_softplus=True)
    assert y.dtype == torch.bfloat16 and torch.isfinite(y.float()).all()
    y.float().sum().backward()
    assert u.grad is not None and torch.isfinite(u.grad).all()


@cuda_only
def test_cuda_auto_picks_triton_without_mamba_ssm():
    from hgmamba_core.ssm.cuda import mamba_ssm_available

    assert ssm.auto_backend("cuda") == ("mamba_ssm" if mamba_ssm_available() else "triton")
