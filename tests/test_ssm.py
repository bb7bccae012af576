"""Every selective-scan backend against the sequential reference: outputs and all gradients."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import pytest
import torch
from ssm_inputs import NAMES, output_and_grads, scan_inputs

import hgmamba_core.ssm as ssm
from hgmamba_core.errors import HGMambaError
from hgmamba_core.ssm import fused

CPU_BACKENDS = [
    "chunked",
    pytest.param(
        "fused",
        marks=pytest.mark.skipif(
            not fused.fused_available(), reason="fused C++ scan could not be built here"
        ),
    ),
]
cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def make_inputs(b, d, length, n=16, full=True, seed=0, delta_scale=0.5, device="cpu"):
    """Random float32 leaf tensors; D, z and delta_bias are None unless `full`."""
    x = scan_inputs(b, d, length, n, full, seed, delta_scale)
    x = {k: None if v is None else v.to(device) for k, v in x.items()}
    return {k: (v.requires_grad_() if v is not None else None) for k, v in x.items()}


def run(inputs, backend, softplus, dtype=None):
    """Output and gradients (for a fixed random cotangent) of one backend."""
    if backend == "reference":
        scan = functools.partial(ssm.selective_scan_reference, delta_softplus=softplus)
    else:
        scan = functools.partial(ssm.selective_scan, delta_softplus=softplus, backend=backend)
    return output_and_grads(inputs, scan, dtype)


def rel_err(got, want):
    want = want.double()
    return ((got.double() - want).abs().max() / want.abs().max().clamp_min(1e-12)).item()


@functools.cache
def oracle(length, full):
    """Float64 reference output and gradients, computed once per case for all backends."""
    inputs = make_inputs(2, 3, length, full=full, seed=length)
    return run(inputs, "reference", softplus=full, dtype=torch.float64)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("length", [17, 27, 243, 17 * 243])
@pytest.mark.parametrize("full", [True, False], ids=["D-z-bias-softplus", "bare"])
def test_matches_reference(backend, length, full):
    inputs = make_inputs(2, 3, length, full=full, seed=length)
    y_ref, g_ref = oracle(length, full)
    y, g = run(inputs, backend, softplus=full)
    assert y.dtype == torch.float32
    assert rel_err(y, y_ref) <= 1e-4
    assert set(g) == set(g_ref)
    for name in g_ref:
        assert g[name].shape == g_ref[name].shape, name
        assert rel_err(g[name], g_ref[name]) <= 1e-4, name


def test_float32_reference_agrees_with_float64_oracle():
    inputs = make_inputs(2, 3, 243)
    y64, g64 = run(inputs, "reference", True, dtype=torch.float64)
    y32, g32 = run(inputs, "reference", True)
    assert rel_err(y32, y64) <= 1e-4
    assert all(rel_err(g32[k], g64[k]) <= 1e-4 for k in g64)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_float64_is_exact(backend):
    inputs = make_inputs(2, 3, 243)
    y_ref, g_ref = run(inputs, "reference", True, dtype=torch.float64)
    y, g = run(inputs, backend, True, dtype=torch.float64)
    assert y.dtype == torch.float64
    assert rel_err(y, y_ref) <= 1e-10
    assert all(rel_err(g[k], g_ref[k]) <= 1e-10 for k in g_ref)


@pytest.mark.parametrize("backend", ["reference", *CPU_BACKENDS])
def test_large_delta_a_is_stable(backend):
    """Δ·A down to about -1e5 must give exact decay to zero, never inf or nan."""
    inputs = make_inputs(2, 3, 243, seed=3, delta_scale=30.0)
    with torch.no_grad():
        inputs["A"].mul_(1000.0)
        inputs["delta"][:, :, ::7] += 60.0  # softplus(Δ) ≈ 60 on some steps
    y, g = run(inputs, backend, True)
    assert torch.isfinite(y).all()
    for name, grad in g.items():
        assert torch.isfinite(grad).all(), name
    if backend != "reference":
        y_ref, g_ref = run(inputs, "reference", True, dtype=torch.float64)
        assert rel_err(y, y_ref) <= 1e-4
        for name in g_ref:
            assert rel_err(g[name], g_ref[name]) <= 1e-4, name


def test_state_size_other_than_16():
    inputs = make_inputs(2, 3, 27, n=5)
    y_ref, g_ref = run(inputs, "reference", True, dtype=torch.float64)
    for backend in ssm.available_backends():
        if backend in ("reference", "mamba_ssm", "triton"):  # CUDA-only (test_ssm_triton.py)
            continue
        y, g = run(inputs, backend, True)
        assert rel_err(y, y_ref) <= 1e-4, backend
        assert all(rel_err(g[k], g_ref[k]) <= 1e-4 for k in g_ref), backend


def test_auto_backend_on_cpu(monkeypatch):
    expected = "fused" if fused.fused_available() else "reference"
    assert ssm.auto_backend(torch.zeros(1)) == expected
    assert {"reference", "chunked"} <= set(ssm.available_backends())
    monkeypatch.setattr(ssm, "fused_available", lambda: False)
    assert ssm.auto_backend("cpu") == "reference"
    inputs = make_inputs(1, 2, 17)
    y, _ = run(inputs, "auto", True)
    y_ref, _ = run(inputs, "reference", True, dtype=torch.float64)
    assert rel_err(y, y_ref) <= 1e-4


def test_failed_build_warns_and_falls_back(monkeypatch, caplog):
    from torch.utils import cpp_extension

    calls = []

    def broken(*args, **kwargs):
        calls.append(kwargs["name"])
        raise RuntimeError("Error building extension 'x': no compiler\nlong log ...")

    monkeypatch.setattr(cpp_extension, "load", broken)
    with caplog.at_level(logging.WARNING):
        assert fused.load_extension.__wrapped__() is None
    assert calls[-1].startswith("hgmamba_scan_portable_")  # the portable build was tried last
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1
    message = warned[0].getMessage()
    assert "fused CPU selective scan unavailable" in message and "no compiler" in message
    assert "\n" not in message


def test_build_is_keyed_by_source_not_checkout_and_announced(monkeypatch, tmp_path, capsys):
    """One build per kernel source and CPU, in the cache, from its own copy of the source: a
    second checkout (another path, same source) reuses it; only a first build says so."""
    from torch.utils import cpp_extension

    seen = []
    monkeypatch.setenv("HGMAMBA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cpp_extension, "load", lambda **kw: seen.append(kw) or "module")
    assert fused.load_extension.__wrapped__() == "module"
    kw = seen[-1]
    build = Path(kw["build_directory"])
    assert build.parent == tmp_path / "cache" / "scan" and build.name == kw["name"]
    assert Path(kw["sources"][0]).read_bytes() == fused.SOURCE.read_bytes()
    assert Path(kw["sources"][0]).parent == build  # not the checkout's path
    assert "compiling the CPU scan kernel once" in capsys.readouterr().err
    (build / f"{kw['name']}.so").write_bytes(b"")  # as if built
    monkeypatch.setattr(fused, "SOURCE", tmp_path / "other_checkout" / "scan_cpu.cpp")
    fused.SOURCE.parent.mkdir()
    fused.SOURCE.write_bytes(Path(kw["sources"][0]).read_bytes())
    assert fused.load_extension.__wrapped__() == "module"
    assert seen[-1]["build_directory"] == kw["build_directory"]
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_non_contiguous_and_low_precision_inputs(backend):
    """Transposed views and bfloat16 go in; y and grads come back in the input dtypes."""
    inputs = make_inputs(2, 3, 27)
    y_ref, g_ref = oracle_for(inputs)
    views = {k: v.detach() for k, v in inputs.items()}
    views = {k: v.mT.contiguous().mT if v.dim() > 1 else v for k, v in views.items()}
    views = {k: v.requires_grad_() for k, v in views.items()}
    assert not views["u"].is_contiguous()
    y, g = run(views, backend, True)
    assert rel_err(y, y_ref) <= 1e-4
    assert all(rel_err(g[k], g_ref[k]) <= 1e-4 for k in g_ref)
    y16, g16 = run(inputs, backend, True, dtype=torch.bfloat16)
    assert y16.dtype == torch.bfloat16
    assert all(v.dtype == torch.bfloat16 for v in g16.values())
    assert rel_err(y16, y_ref) <= 5e-2  # bfloat16 inputs carry ~3 significant digits


def oracle_for(inputs):
    return run(inputs, "reference", True, dtype=torch.float64)


def test_bad_backend_is_a_one_line_error():
    inputs = make_inputs(1, 2, 17)
    args = {k: inputs[k] for k in NAMES}
    with pytest.raises(HGMambaError, match="unknown selective-scan backend"):
        ssm.selective_scan(**args, backend="nope")
    with pytest.raises(HGMambaError, match="mamba_ssm"):
        ssm.selective_scan(**args, backend="mamba_ssm")


@cuda_only
@pytest.mark.parametrize("backend", ["auto", "chunked"])
def test_cuda_matches_reference(backend):
    inputs = make_inputs(2, 3, 243, device="cuda")
    y_ref, g_ref = run(inputs, "reference", True, dtype=torch.float64)
    y, g = run(inputs, backend, True)
    assert y.device.type == "cuda"
    assert rel_err(y, y_ref) <= 1e-4
    for name in g_ref:
        assert rel_err(g[name], g_ref[name]) <= 1e-4, name


@cuda_only
def test_cuda_auto_prefers_mamba_ssm():
    from hgmamba_core.ssm.cuda import mamba_ssm_available

    want = "mamba_ssm" if mamba_ssm_available() else "triton"
    assert ssm.auto_backend("cuda") == want


@pytest.mark.skipif(not fused.fused_available(), reason="fused C++ scan could not be built here")
def test_fused_backward_without_saved_checkpoints():
    """The kernel's own checkpoint pass (used when forward saved none) gives the same grads."""
    ext = fused.load_extension()
    g = torch.Generator().manual_seed(5)
    b, d, length, n = 2, 20, 70, 16  # d not a multiple of the 16-channel block, L of the chunk
    u, delta, dout, z = (torch.randn(b, d, length, generator=g) for _ in range(4))
    A = -torch.rand(d, n, generator=g)
    Bt, Ct = (torch.randn(b, length, n, generator=g) for _ in range(2))
    D, bias = torch.randn(d, generator=g), torch.randn(d, generator=g)
    args = (u, delta, A, Bt, Ct, D, z, bias, True)
    _, ckpt = ext.forward(*args, True)
    with_saved = ext.backward(*args, ckpt, dout)
    without = ext.backward(*args, torch.empty(0), dout)
    for a, b_ in zip(with_saved, without, strict=True):
        torch.testing.assert_close(a, b_, rtol=0, atol=0)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 1, 2), (1, 17, 33)], ids=str)
def test_tiny_and_ragged_shapes(backend, shape):
    """Single steps, single channels, channel counts off the kernel's 16-lane blocks."""
    inputs = make_inputs(*shape, n=16, seed=7)
    y_ref, g_ref = run(inputs, "reference", True, dtype=torch.float64)
    y, g = run(inputs, backend, True)
    assert rel_err(y, y_ref) <= 1e-4
    assert all(rel_err(g[k], g_ref[k]) <= 1e-4 for k in g_ref)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_inference_mode_and_partial_grads(backend):
    inputs = make_inputs(2, 5, 40, seed=11)
    plain = {k: v.detach() for k, v in inputs.items()}
    y_ref = ssm.selective_scan_reference(**plain, delta_softplus=True)
    with torch.inference_mode():
        y = ssm.selective_scan(**plain, delta_softplus=True, backend=backend)
    assert rel_err(y, y_ref) <= 1e-4
    u = plain["u"].clone().requires_grad_()  # only u needs a gradient
    y = ssm.selective_scan(**{**plain, "u": u}, delta_softplus=True, backend=backend)
    y.sum().backward()
    u_ref = plain["u"].clone().requires_grad_()
    ssm.selective_scan_reference(**{**plain, "u": u_ref}, delta_softplus=True).sum().backward()
    assert rel_err(u.grad, u_ref.grad) <= 1e-4


def test_cxx_with_arguments_reaches_torch_builds_through_a_wrapper(monkeypatch, tmp_path):
    """$CXX = "c++ -DX=1" (or "ccache g++") used to fail the torch extension's build, which takes
    $CXX as one program name; the wrapper script runs the whole command with the build's args."""
    import shutil
    import subprocess

    if shutil.which("c++") is None:
        pytest.skip("no c++ on PATH")
    monkeypatch.setenv("CXX", "c++")
    assert fused.cxx_wrapper(tmp_path) is None  # one word: used as it is
    monkeypatch.setenv("CXX", "c++ -DHGMAMBA_WRAPPED=7")
    script = fused.cxx_wrapper(tmp_path)
    assert script is not None and script.parent == tmp_path
    out = subprocess.run(
        [str(script), "-E", "-dM", "-x", "c++", "/dev/null"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "#define HGMAMBA_WRAPPED 7" in out.stdout
    with fused._cxx_for_torch(tmp_path):
        assert Path(fused.os.environ["CXX"]) == script
    assert fused.os.environ["CXX"] == "c++ -DHGMAMBA_WRAPPED=7"
