"""A first `hgmamba lift` never waits for the CPU scan kernel's compile: it uses the PyTorch scan
and has the kernel built in a detached background process, one builder at a time."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from hgmamba_core import background, ssm
from hgmamba_core.model import build_model
from hgmamba_core.ssm import fused, when_ready


def record_spawns(monkeypatch) -> list[list[str]]:
    """Records the builder processes schedule() would start, instead of starting them."""
    calls: list[list[str]] = []
    monkeypatch.setattr(background.subprocess, "Popen", lambda cmd, **kw: calls.append(cmd))
    return calls


@pytest.fixture
def spawned(monkeypatch):
    return record_spawns(monkeypatch)


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


def test_empty_cache_uses_the_fallback_and_schedules_one_build(
    monkeypatch, tmp_path, spawned, capsys
):
    monkeypatch.setenv("HGMAMBA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HGMAMBA_NO_FUSED", raising=False)
    model = build_model("xs").eval()
    assert when_ready.scan_without_waiting(model, torch.device("cpu"))
    assert len(spawned) == 1 and spawned[0][1:4] == ["-m", "hgmamba_core.background", "scan"]
    assert "--lock-fd" in spawned[0]  # the builder inherits the lock, held from the start
    scans = _scans(model)
    assert scans and all(isinstance(s, when_ready.ScanWhenReady) for s in scans)
    assert capsys.readouterr().err == ""  # said when the slower scan first runs, not before
    assert scans[0].backend() == when_ready.FALLBACK  # nothing built in this cache
    scans[0].backend()
    line = capsys.readouterr().err.strip()
    assert "background" in line and "\n" not in line  # one line, once


def test_no_build_when_the_kernel_is_ready_or_on_cuda(monkeypatch, tmp_path, spawned):
    monkeypatch.setenv("HGMAMBA_CACHE", str(tmp_path / "cache"))
    model = build_model("xs").eval()
    assert not when_ready.scan_without_waiting(model, torch.device("cuda"))
    monkeypatch.setattr(fused, "_ready_attempt", lambda: ("name", []))
    assert not when_ready.scan_without_waiting(model, torch.device("cpu"))
    assert spawned == [] and all(s == "auto" for s in _scans(model))


def test_unwritable_cache_falls_back_silently(monkeypatch, tmp_path, spawned, capsys, one_thread):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("HGMAMBA_CACHE", str(blocker / "cache"))  # mkdir fails, even as root
    model = build_model("xs").eval()
    assert when_ready.scan_without_waiting(model, torch.device("cpu"))  # the fallback, silently
    assert spawned == []
    assert all(isinstance(s, when_ready.ScanWhenReady) for s in _scans(model))
    x = torch.zeros(1, model.cfg.frames, 17, 3)
    with torch.inference_mode():
        assert torch.isfinite(model(x)).all()
    assert capsys.readouterr().err == ""


def test_a_held_lock_prevents_a_second_builder(monkeypatch, tmp_path):
    lock = tmp_path / "locks" / "scan.lock"
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen(  # another process holds the lock, as a running builder does
        [sys.executable, "-c", textwrap.dedent(f"""
            import fcntl, os, sys, time
            fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT)
            fcntl.flock(fd, fcntl.LOCK_EX)
            print("held", flush=True)
            sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    spawned = record_spawns(monkeypatch)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert background.is_running(lock)
        assert background.schedule("scan", [], lock) is True
        assert spawned == []  # it is being built: no second builder
        monkeypatch.setattr(fused, "load_extension", lambda: pytest.fail("built twice"))
        assert background.main(["scan", "--lock", str(lock)]) == 0  # a racing builder bows out
    finally:
        holder.communicate("")
    assert not background.is_running(lock)  # the OS dropped it with the process
    assert background.schedule("scan", [], lock) is True and len(spawned) == 1


def test_the_scan_switches_to_the_kernel_once_its_build_is_ready(monkeypatch):
    state = {"built": None}
    monkeypatch.setattr(fused, "built_extension", lambda: state["built"])
    scan = when_ready.ScanWhenReady(recheck_s=0.0)
    assert scan.backend() == "reference"
    state["built"] = object()
    assert scan.backend() == "fused"


def test_ready_stamp_names_the_torch_it_was_built_for(monkeypatch, tmp_path):
    from torch.utils import cpp_extension

    monkeypatch.setenv("HGMAMBA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HGMAMBA_NO_FUSED", raising=False)
    monkeypatch.setattr(cpp_extension, "load", lambda **kw: "module")
    assert fused.build_pending() and fused.built_extension() is None
    assert fused.load_extension.__wrapped__() == "module"  # a (fake) blocking build
    assert not fused.build_pending()
    monkeypatch.setattr(fused, "_ready_stamp", lambda: "torch 0.0 elsewhere")
    assert fused.build_pending()  # another torch: ninja would rebuild, so not ready


@pytest.mark.skipif(not fused.fused_available(), reason="fused C++ scan could not be built here")
def test_fallback_lift_matches_the_kernel(one_thread):
    """The first run's PyTorch scan gives the kernel's 3D (the tolerance of tests/test_ssm.py)."""
    torch.manual_seed(0)
    model = build_model("xs").eval()
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 27, 17, 3)).astype(np.float32))
    with torch.inference_mode():
        y_fused = model(x)
        when_ready.set_scan_backend(model, when_ready.ScanWhenReady())
        scan = _scans(model)[0]
        scan._ready, scan._next_check = False, float("inf")  # as before the build lands
        y_fallback = model(x)
    assert ssm.auto_backend("cpu") == "fused"
    err = (y_fallback - y_fused).abs().max() / y_fused.abs().max()
    assert err <= 1e-4, err


def test_builder_module_runs_as_a_script(tmp_path):
    """`python -m hgmamba_core.background` parses its arguments (no build: the lock is held)."""
    lock = tmp_path / "x.lock"
    with background.hold_lock(lock) as held:
        assert held is True
        r = subprocess.run(
            [sys.executable, "-m", "hgmamba_core.background", "scan", "--lock", str(lock)],
            cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert r.returncode == 0, r.stderr
