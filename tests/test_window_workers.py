"""Eval windows on single-threaded workers (model/window_workers.py): same output, same state."""

from __future__ import annotations

import threading

import pytest
import torch
from test_fast_eval import _input, _model

from hgmamba_core.model import window_workers
from hgmamba_core.model.window_workers import map_windows, split_even, worker_count
from hgmamba_core.ssm import mixer_kernel


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_split_even_and_worker_count():
    assert split_even(10, 3) == [4, 3, 3]
    assert split_even(2, 4) == [1, 1, 0, 0]
    assert worker_count(64, 1) == 1  # one torch thread: inline
    assert worker_count(2 * window_workers.MIN_WINDOWS_PER_WORKER - 1, 2) == 1
    assert worker_count(2 * window_workers.MIN_WINDOWS_PER_WORKER, 2) == 2
    assert worker_count(1000, 3) == 3


def test_map_windows_keeps_order_and_the_callers_thread_state(two_threads):
    seen = []

    def fn(c):
        seen.append(
            (
                threading.current_thread().name,
                torch.get_num_threads(),
                torch.is_inference_mode_enabled(),
                torch.is_grad_enabled(),
                torch.is_autocast_enabled("cpu"),
                torch.get_autocast_dtype("cpu"),
            )
        )
        return c * 2

    x = torch.arange(10.0)[:, None]
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        y = map_windows(fn, x, step=2, workers=2)
    assert torch.equal(y, x * 2)
    assert len(seen) == 6  # groups of 5 and 5, chunks of 2, 2, 1 each
    assert all(name.startswith("hgmamba-windows") for name, *_ in seen)
    assert {s[1:] for s in seen} == {(1, True, False, True, torch.bfloat16)}
    assert torch.get_num_threads() == 2  # the caller's count is back
    with torch.no_grad():  # grad off without inference mode: the workers too
        map_windows(fn, x, step=4, workers=2)
    assert {s[2:5] for s in seen[6:]} == {(False, False, False)}


@pytest.mark.skipif(not mixer_kernel.available(), reason="the CPU eval kernel could not be built")
@pytest.mark.parametrize("amp", [False, True])
def test_model_output_with_workers_matches_one_pass(two_threads, amp, monkeypatch):
    used = []
    real = window_workers.map_windows
    monkeypatch.setattr(window_workers, "map_windows", lambda *a: used.append(a[3]) or real(*a))
    model = _model("xs")
    x = _input(12, 27)
    outs = {}
    ctx = torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp)
    for parallel in (False, True):
        model.parallel_windows = parallel
        with torch.inference_mode(), ctx:
            outs[parallel] = model(x).float()
    tol = 2e-2 if amp else 1e-6  # different GEMM shapes (6 windows a pass instead of 12)
    assert (outs[True] - outs[False]).abs().max() <= tol * outs[False].abs().max()
    assert torch.get_num_threads() == 2
    assert used == [1, 2]  # one pass, then two workers
