"""The eval-only CPU fast path (model/fast_eval.py) computes the same function as the modules."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import H36M_DIR, REPO

from hgmamba_core import build_model
from hgmamba_core.device import cpu_flags
from hgmamba_core.model import fast_eval
from hgmamba_core.model.variants import get_variant
from hgmamba_core.ssm import mixer_kernel

pytestmark = pytest.mark.skipif(
    not mixer_kernel.available(), reason="the CPU eval kernel could not be built here"
)


def _model(variant="tiny", seed=0, **overrides) -> torch.nn.Module:
    """A random model with non-trivial BatchNorm statistics, layer scales and SSM parameters."""
    torch.manual_seed(seed)
    cfg = dataclasses.replace(get_variant(variant), **overrides)
    model = build_model(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "scale" in name or "edge_weight" in name or name.endswith(("A_log", ".D")):
                p.add_(0.3 * torch.randn_like(p))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _input(batch, frames, seed=1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, frames, 17, 3, generator=g)
    x[..., 2] = torch.rand(batch, frames, 17, generator=g)
    return x


def _slow(model, x) -> torch.Tensor:
    """The plain module path (what training differentiates), forced."""
    with torch.no_grad(), pytest.MonkeyPatch.context() as mp:
        mp.setattr(fast_eval, "fast_path_available", lambda *a: False)
        return model(x)


def _close(a, b, tol=1e-5):
    assert (a - b).abs().max() <= tol * max(1.0, b.abs().max().item())


@pytest.mark.parametrize(("variant", "frames"), [("tiny", 9), ("tiny", 4), ("xs", 27), ("xs", 5)])
def test_fast_path_matches_modules(variant, frames):
    model = _model(variant)
    x = _input(2, frames)
    with torch.inference_mode():
        fast = model(x)
    _close(fast, _slow(model, x))


def test_state_size_other_than_16_uses_the_portable_kernel():
    model = _model("tiny", d_state=8)
    x = _input(3, 9)
    with torch.no_grad():
        _close(model(x), _slow(model, x))


def test_used_only_in_eval_without_grad(monkeypatch):
    model = _model()
    calls = []
    real = fast_eval.block_forward
    monkeypatch.setattr(fast_eval, "block_forward", lambda *a: calls.append(1) or real(*a))
    x = _input(1, 9)
    model(x)  # eval, grad on: modules
    model.train()
    with torch.no_grad():
        model(x)  # training mode: modules (BatchNorm batch statistics, shuffles)
    assert not calls
    model.eval()
    with torch.no_grad():
        model(x)
    assert len(calls) == model.cfg.depth


def test_folded_weights_follow_parameter_changes():
    model = _model()
    x = _input(2, 9)
    with torch.no_grad():
        before = model(x)
        other = _model(seed=5)
        model.load_state_dict(other.state_dict())
        after = model(x)
        _close(after, _slow(other, x))
        assert (after - before).abs().max() > 1e-3
        model.blocks[0].mamba.mixer.ts.ssm_b.A_log.add_(0.5)  # an in-place step
        _close(model(x), _slow(model, x))


def test_bfloat16_autocast_no_worse_than_the_modules():
    """Under CPU bf16 autocast the fast path errs (against float32) no more than the modules."""
    model = _model("xs")
    x = _input(2, 27)
    y32 = _slow(model, x)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        fast = model(x).float()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(fast_eval, "fast_path_available", lambda *a: False)
            slow = model(x).float()
    assert torch.isfinite(fast).all()
    assert (fast - y32).abs().max() <= 1.5 * (slow - y32).abs().max()


def test_float32_without_onednn_runs_the_plain_ops(monkeypatch):
    """Where torch has no oneDNN linears, the float32 fast path's GEMMs (the scan projections'
    mm with the (out, in) weights transposed among them) still give the modules' result."""
    model = _model("xs")
    x = _input(3, 27)
    monkeypatch.setattr(fast_eval, "_onednn_linear", lambda: False)
    with torch.no_grad():
        assert fast_eval._gemm_dtype(x) is None
        _close(model(x), _slow(model, x))


def test_bfloat16_autocast_without_onednn_bf16_runs_the_plain_ops(monkeypatch):
    """Where oneDNN cannot run bf16 linears (an AVX2 CPU, or its ISA capped), autocast still
    works: the plain ops, to the same accuracy as the modules."""
    model = _model("xs")
    x = _input(2, 27)
    y32 = _slow(model, x)
    monkeypatch.setattr(fast_eval, "_onednn_bf16_linear", lambda: False)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert fast_eval._gemm_dtype(x) is None
        fast = model(x).float()
        monkeypatch.setattr(fast_eval, "fast_path_available", lambda *a: False)
        slow = model(x).float()
    assert (fast - y32).abs().max() <= 1.5 * (slow - y32).abs().max()


def test_kernel_rejects_bad_order():
    z = torch.zeros
    args = [z(4, 6, 40), torch.tensor([[0, 1, 2], [0, 1, 3]], dtype=torch.int32)]
    args += [z(4, 4, 16), z(4, 4, 2), z(4, 4), z(4, 4), z(6, 2, 4)]
    with pytest.raises(ValueError, match="token order"):
        mixer_kernel.mixer_forward(*args)


@pytest.mark.skipif(not H36M_DIR.is_dir(), reason="needs ../shared/data/h36m")
@pytest.mark.parametrize("weights", ["hgmamba_xs_h36m.pt", "hgmamba_xs_wild.pt"])
def test_shipped_weights_on_real_windows_agree_to_a_micrometre(weights, monkeypatch):
    """The shipped lifters on real H36M windows (S9 Walking, GT 2D): fast path == modules.

    The temporal unit's k nearest frames are a top-k, so a near-tie can flip on any float
    change (as between thread counts); the modules' choice is replayed in the fast path, so
    what is compared is the arithmetic alone."""
    import numpy as np

    from hgmamba_core.data.h36m import load_h36m
    from hgmamba_core.data.windows import clip_inputs
    from hgmamba_core.model import hypergcn
    from hgmamba_core.model.checkpoint import load_lifter

    model = load_lifter(REPO / "assets" / "weights" / weights)
    clip = load_h36m(H36M_DIR, ["S9"], "gt", actions=["Walking"], cameras=["54138969"])[0]
    t = model.cfg.frames
    x = torch.from_numpy(np.ascontiguousarray(clip_inputs(clip)[: 6 * t].reshape(6, t, 17, 3)))
    chosen = []
    real = hypergcn.knn_frame_adjacency
    monkeypatch.setattr(
        hypergcn, "knn_frame_adjacency", lambda h, k: chosen.append(real(h, k)) or chosen[-1]
    )
    slow = _slow(model, x)
    monkeypatch.setattr(fast_eval, "knn_frame_adjacency", lambda h, k: chosen.pop(0))
    with torch.inference_mode():
        fast = model(x)
    assert not chosen
    assert (fast - slow).abs().max().item() * 1000.0 < 1e-3  # metres -> mm


def test_low_precision_model_runs_the_modules(monkeypatch):
    model = _model().to(torch.bfloat16)
    calls = []
    monkeypatch.setattr(fast_eval, "block_forward", lambda *a: calls.append(1))
    with torch.no_grad():
        y = model(_input(1, 9).to(torch.bfloat16))
    assert not calls and y.dtype == torch.bfloat16


def test_other_scan_backend_or_switch_off_runs_the_modules(monkeypatch):
    model = _model()
    calls = []
    monkeypatch.setattr(fast_eval, "block_forward", lambda *a: calls.append(1))
    x = _input(1, 9)
    with torch.no_grad():
        model.fast_eval = False
        model(x)
        model.fast_eval = True
        model.blocks[1].mamba.mixer.scan_backend = "reference"
        model(x)
    assert not calls


@pytest.mark.slow
def _run_here_with(env: dict[str, str], tests: str) -> None:
    """This file's tests selected by `tests` (pytest -k) in a child process with env added
    (a kernel build setting): all must pass, none skip."""
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", tests],
        cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "passed" in run.stdout and "skipped" not in run.stdout.splitlines()[-1]


def test_portable_kernel_build_matches_the_modules(tmp_path):
    """The build without -march=native (an ARM Mac, an old CPU) runs the generic C++ loops, not
    the AVX2 or AVX-512 ones this machine compiles: the same checks must pass there."""
    env = {"HGMAMBA_SCAN_PORTABLE": "1", "HGMAMBA_CACHE": str(tmp_path)}
    _run_here_with(env, "test_fast_path_matches_modules or other_than_16 or bfloat16")
    assert [p.name for p in (tmp_path / "mixer").iterdir() if "portable" in p.name]


@pytest.mark.slow
@pytest.mark.skipif(
    not {"avx512f", "avx2", "fma"} <= cpu_flags() or mixer_kernel.compiler() is None,
    reason="needs an AVX-512 CPU (elsewhere the native build is the AVX2 or portable one)",
)
def test_avx2_kernel_build_matches_the_modules(tmp_path):
    """The AVX2 + FMA code (most laptops) is what `-mno-avx512f` builds here: the kernel's
    definition and the modules must hold for it too, not only for this machine's AVX-512."""
    env = {"CXX": "c++ -mno-avx512f", "HGMAMBA_CACHE": str(tmp_path), "HGMAMBA_EXPECT_SIMD": "avx2"}
    _run_here_with(
        env, "test_fast_path_matches_modules or kernel_matches_its_definition or simd_is"
    )


@pytest.mark.skipif(not os.environ.get("HGMAMBA_EXPECT_SIMD"), reason="run by the AVX2 build test")
def test_loaded_kernel_simd_is_the_expected_one():
    assert mixer_kernel.load().simd == os.environ["HGMAMBA_EXPECT_SIMD"]


def _mixer_inputs(seed=0, b=3, t=7, j=5, d=21, n=16, r=3, dt_shift=-2.0):
    """Random mixer-kernel inputs: 2 mixers, a partial last channel block (d = 21)."""
    g = torch.Generator().manual_seed(seed)
    L = t * j
    ld = d + r + 2 * n + 3  # padded rows, as the fast path passes them
    order = fast_eval.token_order(t, j)
    return (
        0.3 * torch.randn(4, b * L, ld, generator=g),
        order,
        -5 * torch.rand(4, d, n, generator=g),
        0.3 * torch.randn(4, d, r, generator=g),
        0.3 * torch.randn(4, d, generator=g) + dt_shift,
        torch.randn(4, d, generator=g),
        torch.randn(b * L, 2, d, generator=g),
    )


def _forward_with_threads(kernel, args, threads, low=False):
    out = torch.empty_like(args[-1])
    b_l, g, d = out.shape
    L = args[1].shape[1]
    sizes = (b_l // L, L, g, d, args[3].shape[2], args[2].shape[2], args[0].shape[2])
    code = kernel(*(a.data_ptr() for a in (*args, out)), sizes=sizes, threads=threads, low=low)
    assert code == 0
    return out


def _mixer_reference(proj, order, a2, wdt, dt_bias, dskip, gate):
    """The kernel's definition (mixer_cpu.cpp) as a float64 PyTorch loop over the tokens."""
    proj, a2, wdt, dt_bias, dskip, gate = (
        t.double() for t in (proj, a2, wdt, dt_bias, dskip, gate)
    )
    n_rows, n_mix, d = gate.shape
    L, n, r = order.shape[1], a2.shape[2], wdt.shape[2]
    out = torch.zeros_like(gate)
    for k in range(2 * n_mix):
        g, back = divmod(k, 2)
        for bi in range(n_rows // L):
            h = torch.zeros(d, n, dtype=torch.float64)
            for s in reversed(range(L)) if back else range(L):
                row = bi * L + int(order[g, s])
                u, q = proj[k, row, :d], proj[k, row, d:]
                dt = F.softplus(dt_bias[k] + wdt[k] @ q[:r])
                h = torch.exp2(dt[:, None] * a2[k]) * h + (dt * u)[:, None] * q[None, r : r + n]
                y = h @ q[r + n : r + 2 * n] + dskip[k] * u
                out[row, g] += gate[row, g] * y
    return out


@pytest.mark.parametrize(("dt_shift", "d"), [(-2.0, 21), (6.0, 21), (-2.0, 12), (-2.0, 32)])
def test_kernel_matches_its_definition(dt_shift, d):
    """Against a float64 loop of the same maths; dt_shift 6 makes deltas of ~6, so delta * A2
    reaches -30 * 6 and the AVX2 kernel's clamped 2^x (its per-token check) is exercised.
    Channel counts: 21 = 16 + 5 (the AVX-512 scan's last block shifted back to end at d), 12
    (fewer than one block: masked lanes), 32 (whole blocks only)."""
    kernel = mixer_kernel.load()
    args = _mixer_inputs(seed=5, b=2, d=d, dt_shift=dt_shift)
    args = (args[0], args[1], args[2] * 6, *args[3:])  # A2 down to -30
    got = _forward_with_threads(kernel, args, 1).double()
    ref = _mixer_reference(*args)
    assert (got - ref).abs().max() <= 1e-4 * (1 + ref.abs().max())


@pytest.mark.parametrize("dt_shift", [-6.0, -2.0, 2.0])
def test_low_precision_kernel_stays_within_bf16_accuracy(dt_shift):
    """low=1 (fast_eval under bf16 autocast): the AVX-512 build's degree-3 2^x errs far below
    bf16's 2^-8 against the float64 definition, also for tiny deltas (decays near 1 over long
    memories: dt_shift -6, L = 80 tokens); other builds give the float32 result's bits."""
    kernel = mixer_kernel.load()
    args = _mixer_inputs(seed=7, b=2, t=16, j=5, dt_shift=dt_shift)
    ref = _mixer_reference(*args)
    low = _forward_with_threads(kernel, args, 1, low=True).double()
    full = _forward_with_threads(kernel, args, 1).double()
    scale = ref.abs().max()
    assert (low - ref).abs().max() <= 5e-4 * scale  # measured 6e-5; bf16 rounds at 3.9e-3
    if kernel.simd == "avx512":
        assert 0 < (low - full).abs().max() <= 5e-4 * scale
    else:
        assert torch.equal(low, full)


def test_kernel_result_does_not_depend_on_the_thread_count():
    """Each task owns its outputs, so 1, 2 or 5 threads (OpenMP team or std::thread) give the
    same bits; on Linux with torch's libgomp the build runs in torch's OpenMP team."""
    kernel = mixer_kernel.load()
    assert kernel.openmp == mixer_kernel.shares_torch_openmp()
    args = _mixer_inputs()
    one = _forward_with_threads(kernel, args, 1)
    assert torch.isfinite(one).all() and one.abs().max() > 0
    for threads in (2, 5):
        assert torch.equal(_forward_with_threads(kernel, args, threads), one)


def test_std_thread_build_matches_the_openmp_build(tmp_path, monkeypatch):
    """Where the process has no shareable libgomp (macOS, renamed runtimes) the kernel is built
    without OpenMP and runs std::threads: the same numbers."""
    kernel = mixer_kernel.load()
    cxx = mixer_kernel.compiler()
    monkeypatch.setenv("HGMAMBA_CACHE", str(tmp_path))
    monkeypatch.setattr(mixer_kernel, "shares_torch_openmp", lambda: False)
    plain, err = mixer_kernel._load_with(cxx)
    assert plain is not None, err
    assert not plain.openmp and plain.simd == kernel.simd
    args = _mixer_inputs(seed=3)
    ref = _forward_with_threads(kernel, args, 2)
    assert torch.equal(_forward_with_threads(plain, args, 2), ref)
