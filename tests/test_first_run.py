"""A first `hgmamba lift` runs the eval fast path: its torch-free kernel (ssm/mixer_kernel.py)
compiles in seconds in the foreground, into the cache, once; without a compiler the lifter runs
its PyTorch modules, with one line and no traceback, and never compiles the torch extension."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO

from hgmamba_core.model import build_model, fast_eval
from hgmamba_core.model.checkpoint import save_checkpoint
from hgmamba_core.ssm import fused, mixer_kernel, when_ready

needs_compiler = pytest.mark.skipif(
    mixer_kernel.compiler() is None or not mixer_kernel.available(),
    reason="no C++ compiler here to build the CPU eval kernel",
)


@pytest.fixture
def fresh_kernel(monkeypatch, tmp_path):
    """An empty cache, and `mixer_kernel.load` forgetting what this process loaded before."""
    monkeypatch.setenv("HGMAMBA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HGMAMBA_NO_FUSED", raising=False)
    load = mixer_kernel.load  # the cached function, even where a test patches it
    load.cache_clear()
    yield tmp_path / "cache"
    load.cache_clear()


@pytest.fixture
def one_thread():
    """The PyTorch scan is ~100 small ops per step: on a busy 2-core machine two OpenMP threads
    spin against other jobs and make it 10x slower; one thread keeps these tests fast."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _scans(model) -> list:
    return [m.scan_backend for m in model.modules() if hasattr(m, "scan_backend")]


def _no_compiler(monkeypatch, tmp_path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("CXX", str(tmp_path / "no_such_compiler"))
    monkeypatch.setenv("PATH", str(empty))


def _random_input(frames: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.normal(size=(2, frames, 17, 3)).astype(np.float32))


@needs_compiler
def test_empty_cache_builds_the_kernel_once_and_the_fast_path_uses_it(
    fresh_kernel, monkeypatch, capsys
):
    model = build_model("tiny").eval()
    assert when_ready.scan_without_waiting(model, torch.device("cpu"))
    assert capsys.readouterr().err == ""  # nothing is built before the first forward pass
    x = _random_input(9)
    with torch.inference_mode():
        model(x)
    built = list((fresh_kernel / "mixer").glob("hgmamba_mixer_*.so"))
    assert len(built) == 1
    line = capsys.readouterr().err.strip()
    assert "compiling the CPU eval kernel" in line and " s" in line and "\n" not in line
    assert not (fresh_kernel / "scan").exists()  # the torch extension is not built for a lift
    load = mixer_kernel.load
    kernel = load()
    assert kernel.path == built[0]
    calls = []
    monkeypatch.setattr(mixer_kernel, "load", lambda: calls.append(1) or kernel)
    with torch.inference_mode():
        fast = model(x)
        slow = _modules(model, x)
    assert calls and (fast - slow).abs().max() <= 1e-5 * max(1.0, slow.abs().max().item())
    assert load.__wrapped__().path == built[0]  # the next run only loads it
    assert capsys.readouterr().err == ""


def _modules(model, x):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fast_eval, "fast_path_available", lambda *a: False)
        return model(x)


@needs_compiler
def test_portable_build_matches_the_modules(fresh_kernel, monkeypatch):
    """Without -march=native (a laptop without AVX-512, an ARM Mac) the portable loops run."""
    monkeypatch.setenv("HGMAMBA_SCAN_PORTABLE", "1")
    kernel = mixer_kernel.load()
    assert kernel is not None and "portable" in kernel.path.name and not kernel.simd
    for d_state in (16, 8):
        torch.manual_seed(d_state)
        import dataclasses

        from hgmamba_core.model.variants import get_variant

        model = build_model(dataclasses.replace(get_variant("tiny"), d_state=d_state)).eval()
        x = _random_input(9, seed=d_state)
        with torch.inference_mode():
            fast, slow = model(x), _modules(model, x)
        assert (fast - slow).abs().max() <= 1e-5 * max(1.0, slow.abs().max().item())


def test_missing_compiler_falls_back_to_the_modules(fresh_kernel, monkeypatch, tmp_path, caplog):
    _no_compiler(monkeypatch, tmp_path)
    assert mixer_kernel.compiler() is None
    model = build_model("tiny").eval()
    assert when_ready.scan_without_waiting(model, torch.device("cpu"))
    scans = _scans(model)
    assert all(isinstance(s, when_ready.NoWaitScan) for s in scans)
    with torch.inference_mode():
        assert torch.isfinite(model(_random_input(9))).all()
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "no C++ compiler" in warned[0] and "\n" not in warned[0]
    assert scans[0].backend(torch.device("cpu")) == when_ready.modules_scan()
    assert not fast_eval.fast_path_available(_random_input(9), model)
    assert not (fresh_kernel / "scan").exists()  # the torch extension was not compiled either


def test_failed_build_falls_back_with_one_line(fresh_kernel, monkeypatch, tmp_path, caplog):
    fake = tmp_path / "broken_cxx"
    fake.write_text("#!/bin/sh\necho 'fatal error: no luck' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CXX", str(fake))
    assert mixer_kernel.load() is None
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "no luck" in warned[0]
    assert not list((fresh_kernel / "mixer").iterdir())  # no half-written library left


def test_lift_without_a_compiler_has_no_traceback(tmp_path):
    """The whole CLI: CXX pointing nowhere, no compiler on PATH, an empty cache."""
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "tiny.pt", build_model("tiny"))
    kp = np.random.default_rng(0).uniform(300, 700, size=(30, 1, 17, 2)).astype(np.float32)
    conf = np.full((30, 1, 17, 1), 0.9, np.float32)
    f = tmp_path / "walk.npz"
    np.savez(f, keypoints=np.concatenate([kp, conf], -1), fps=25.0, size=np.array([1000, 1000]))
    (tmp_path / "bin").mkdir()
    env = {"PATH": str(tmp_path / "bin"), "CXX": str(tmp_path / "nope"), "PYTHONPATH": str(REPO),
           "HGMAMBA_CACHE": str(tmp_path / "cache"), "HOME": str(tmp_path), "COLUMNS": "120",
           "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp_path / "yolo")}  # fmt: skip
    cmd = [sys.executable, "-m", "hgmamba_cli.app", "lift", "--keypoints", str(f), "--layout", "h36m",
           "--checkpoint", str(ckpt), "--out", str(tmp_path / "out"), "--no-render"]  # fmt: skip
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    assert "no C++ compiler" in r.stderr
    assert (tmp_path / "out" / "walk" / "pose3d.npy").is_file()
    assert not (tmp_path / "cache" / "scan").exists()


@needs_compiler
def test_concurrent_first_runs_compile_once(tmp_path):
    """Two processes wanting the kernel at once: one compiles, the other waits and loads."""
    code = "from hgmamba_core.ssm import mixer_kernel as m; print(m.load().path)"
    env = {**_env_without(("HGMAMBA_NO_FUSED", "HGMAMBA_SCAN_PORTABLE")),
           "HGMAMBA_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}  # fmt: skip
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    assert len({o[0].strip() for o in outs}) == 1  # the same library
    assert sum("compiling the CPU eval kernel" in o[1] for o in outs) == 1


def _env_without(names: tuple[str, ...]) -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k not in names}


@needs_compiler
@pytest.mark.parametrize(
    ("change", "match"),
    [
        ("gate", "shapes do not fit"),
        ("strided", "not contiguous"),
        ("dtype", "float32"),
        ("rows", "whole number"),
    ],
)
def test_bad_shapes_are_a_clear_error(change, match):
    z = torch.zeros
    order = torch.tensor([[0, 1, 2], [2, 1, 0]], dtype=torch.int32)
    args = {"proj": z(4, 6, 40), "order": order, "A2": z(4, 4, 16),
            "wdt": z(4, 4, 2), "dt_bias": z(4, 4), "dskip": z(4, 4), "gate": z(6, 2, 4)}  # fmt: skip
    assert mixer_kernel.mixer_forward(**args).shape == (6, 2, 4)  # the good call runs
    if change == "gate":
        args["gate"] = z(6, 2, 5)
    elif change == "strided":
        args["proj"] = z(4, 40, 6).transpose(1, 2)
    elif change == "dtype":
        args["A2"] = z(4, 4, 16, dtype=torch.float64)
    else:
        args["proj"], args["gate"] = z(4, 7, 40), z(7, 2, 4)
    with pytest.raises(ValueError, match=match):
        mixer_kernel.mixer_forward(**args)


@needs_compiler
def test_the_c_entry_point_checks_its_arguments_itself():
    """Called past the Python checks, bad sizes and orders are error codes, not a crash."""
    kernel = mixer_kernel.load()
    z = torch.zeros
    proj, a2, wdt = z(4, 6, 40), z(4, 4, 16), z(4, 4, 2)
    dtb, dskip, gate, out = z(4, 4), z(4, 4), z(6, 2, 4), z(6, 2, 4)
    bad_order = torch.tensor([[0, 1, 2], [0, 1, 7]], dtype=torch.int32)
    ptrs = [t.data_ptr() for t in (proj, bad_order, a2, wdt, dtb, dskip, gate, out)]
    assert kernel(*ptrs, sizes=(2, 3, 2, 4, 2, 16, 40), threads=2) == 2  # order entry 7 >= L
    assert kernel(*ptrs, sizes=(2, 3, 2, 4, 2, 300, 40), threads=2) == 1  # n > 256
    assert kernel(*ptrs, sizes=(2, 3, 2, 4, 2, 16, 10), threads=2) == 1  # ld too small


@pytest.mark.skipif(not mixer_kernel.available(), reason="no CPU eval kernel here")
def test_fallback_lift_matches_the_fast_path(one_thread):
    """Without the kernel the modules with the PyTorch loop give the fast path's 3D."""
    torch.manual_seed(0)
    model = build_model("xs").eval()
    x = _random_input(27)[:1]
    with torch.inference_mode():
        y_fast = model(x)
        when_ready.set_scan_backend(model, when_ready.FALLBACK)
        y_fallback = model(x)
    err = (y_fallback - y_fast).abs().max() / y_fast.abs().max()
    assert err <= 1e-4, err


def test_no_wait_scan_keeps_the_fast_path_and_cuda_untouched():
    model = build_model("tiny").eval()
    assert not when_ready.scan_without_waiting(model, torch.device("cuda"))
    assert all(s == "auto" for s in _scans(model))
    assert when_ready.scan_without_waiting(model, torch.device("cpu"))
    with torch.no_grad():
        fast = fast_eval.fast_path_available(_random_input(9), model)
    assert fast == mixer_kernel.available()
    assert when_ready.NoWaitScan().backend(torch.device("cuda")) == "auto"


def test_modules_scan_never_compiles(monkeypatch, tmp_path):
    monkeypatch.setenv("HGMAMBA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fused, "load_extension", lambda: pytest.fail("compiled in a lift"))
    assert when_ready.modules_scan() == when_ready.FALLBACK  # nothing built in this cache
    monkeypatch.setattr(fused, "_ready_attempt", lambda: ("name", []))
    monkeypatch.setattr(fused, "load_extension", lambda: "module")
    assert when_ready.modules_scan() == "fused"


def test_ready_stamp_names_the_torch_it_was_built_for(monkeypatch, tmp_path):
    from torch.utils import cpp_extension

    monkeypatch.setenv("HGMAMBA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HGMAMBA_NO_FUSED", raising=False)
    monkeypatch.setattr(cpp_extension, "load", lambda **kw: "module")
    assert fused._ready_attempt() is None
    assert fused.load_extension.__wrapped__() == "module"  # a (fake) blocking build
    assert fused._ready_attempt() is not None
    copied = Path(fused._ready_marker(fused._ready_attempt()[0])).parent
    assert (copied / "scan_math.h").read_bytes() == fused.HEADERS[0].read_bytes()
    monkeypatch.setattr(fused, "_ready_stamp", lambda: "torch 0.0 elsewhere")
    assert fused._ready_attempt() is None  # another torch: ninja would rebuild, so not ready
