"""Training loop: a few steps lower the loss; an interrupted + resumed run equals an uninterrupted one."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from h36m_tmpdata import write_mini_h36m

from hgmamba_core.errors import HGMambaError
from hgmamba_core.model.checkpoint import load_lifter, read_checkpoint
from hgmamba_core.train import TrainConfig, lifter_loss, train


@pytest.fixture(scope="module")
def mini_data(h36m_dir, tmp_path_factory):
    return write_mini_h36m(h36m_dir, tmp_path_factory.mktemp("h36m"), frames=120)


def _cfg(data, out, **kw) -> TrainConfig:
    base = dict(
        out=str(out), data=str(data), variant="tiny", epochs=2, batch_size=8, train_subjects=["S1"],
        test_subjects=["S9"], eval_tile_every=4, checkpoint_every=3, seed=3, device="cpu",
    )  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


def test_loss_terms():
    y = torch.zeros(2, 3, 17, 3)
    p = y.clone()
    p[..., 0] = 0.05  # constant 5 cm offset: no velocity error
    assert lifter_loss(p, y, 20.0).item() == pytest.approx(0.05)
    p[:, 1, :, 0] += 0.01  # one frame moves 1 cm more: velocity error 1 cm on 2 of 2 steps
    assert lifter_loss(p, y, 20.0).item() == pytest.approx((0.05 * 2 + 0.06) / 3 + 20 * 0.01)


def test_tiny_run_lowers_loss_and_writes_checkpoints(mini_data, tmp_path):
    out = tmp_path / "run"
    res = train(_cfg(mini_data, out, epochs=3, lr=2e-3))
    losses = [r["train_loss"] for r in res.history]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert all(np.isfinite(r["test_mpjpe_mm"]) for r in res.history)
    lines = (out / "log.jsonl").read_text().splitlines()
    assert [json.loads(s)["epoch"] for s in lines] == [1, 2, 3]
    model = load_lifter(out / "best.pt")  # model-only lifter checkpoint
    assert model.cfg.name == "tiny" and model.meta["frame_stride"] == 1
    with pytest.raises(HGMambaError, match="already holds a run"):
        train(_cfg(mini_data, out))


def test_resume_equals_uninterrupted(mini_data, tmp_path):
    full = train(_cfg(mini_data, tmp_path / "full"))
    part = train(_cfg(mini_data, tmp_path / "part", max_steps=5))  # stops mid-epoch 1
    assert part.stopped_early and part.global_step == 5 and part.epochs_done == 0
    final = load_lifter(tmp_path / "part" / "final.pt")  # model-only, where the run stopped
    assert final.meta["global_step"] == 5 and final.meta["stopped_early"]
    at_stop = read_checkpoint(tmp_path / "part" / "last.pt")["state_dict"]
    for k, v in final.state_dict().items():
        torch.testing.assert_close(v, at_stop[k], rtol=0, atol=0, msg=k)
    rest = train(_cfg(mini_data, tmp_path / "part"), resume=True)
    assert rest.global_step == full.global_step
    a = read_checkpoint(tmp_path / "full" / "last.pt")["state_dict"]
    b = read_checkpoint(tmp_path / "part" / "last.pt")["state_dict"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    for ra, rb in zip(full.history, rest.history, strict=True):
        assert ra["train_loss"] == rb["train_loss"]
        assert ra["test_mpjpe_mm"] == rb["test_mpjpe_mm"]
    with pytest.raises(HGMambaError, match="nothing to resume"):
        train(_cfg(mini_data, tmp_path / "none"), resume=True)


def test_velocity_weight_ramp():
    from hgmamba_core.train import velocity_weight_at

    paper = TrainConfig(out="o", data="d")
    assert velocity_weight_at(paper, 0) == velocity_weight_at(paper, 10**6) == 20.0
    ramp = TrainConfig(out="o", data="d", velocity_warmup_steps=100)
    assert velocity_weight_at(ramp, 0) == 0.0
    assert velocity_weight_at(ramp, 25) == pytest.approx(5.0)
    assert velocity_weight_at(ramp, 100) == velocity_weight_at(ramp, 5000) == 20.0


def test_learning_rate_schedules():
    from hgmamba_core.train import learning_rate

    exp = TrainConfig(out="o", data="d", lr=1e-3, lr_decay=0.5, warmup_steps=4)
    assert learning_rate(exp, 0, 0, 100) == pytest.approx(0.25e-3)  # warm-up 1/4
    assert learning_rate(exp, 2, 50, 100) == pytest.approx(0.25e-3)  # 0.5 ** 2
    cos = TrainConfig(out="o", data="d", lr=1e-3, lr_schedule="cosine", warmup_steps=10)
    assert learning_rate(cos, 0, 9, 110) == pytest.approx(1e-3)  # end of warm-up: peak
    assert learning_rate(cos, 0, 60, 110) == pytest.approx(1e-3 * (0.01 + 0.99 * 0.5))  # half way
    assert learning_rate(cos, 0, 110, 110) == pytest.approx(1e-5)  # floor: 1 % of lr
    with pytest.raises(HGMambaError, match="lr-schedule"):
        learning_rate(TrainConfig(out="o", data="d", lr_schedule="step"), 0, 0, 10)


def test_time_budget_fixes_steps(mini_data, tmp_path):
    from hgmamba_core.train import budget_steps

    cfg = TrainConfig(out="o", data="d", time_budget_min=1.0)
    assert budget_steps(cfg, 30, 6.0, 30) == 30 + 270  # 0.2 s/step, 54 s left
    assert budget_steps(cfg, 30, 70.0, 30) == 30  # over budget: stop now
    # a run of 1000 epochs with a 3 s budget stops by itself with a resumable checkpoint
    run = _cfg(mini_data, tmp_path / "b", epochs=1000, lr_schedule="cosine", time_budget_min=0.05)
    res = train(run)
    assert res.stopped_early and res.epochs_done < 1000
    assert "train" in read_checkpoint(tmp_path / "b" / "last.pt")
    stored = json.loads((tmp_path / "b" / "config.json").read_text())
    assert stored["lr_schedule"] == "cosine"
    assert stored["max_steps"] == 0 or stored["max_steps"] >= 30  # set once 30 steps are timed


def test_init_from_starts_at_given_weights(mini_data, tmp_path):
    first = train(_cfg(mini_data, tmp_path / "a", epochs=1))
    src = tmp_path / "a" / "best.pt"
    run = _cfg(mini_data, tmp_path / "b", epochs=1, init_from=str(src), max_steps=1, lr=1e-12)
    train(run)  # one step at a negligible lr: the weights are still the source's
    a = load_lifter(src).state_dict()
    b = read_checkpoint(tmp_path / "b" / "last.pt")["state_dict"]
    assert first.global_step > 0
    for k in a:
        if a[k].is_floating_point() and "running_" not in k:  # BN statistics move at any lr
            torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6)
    with pytest.raises(HGMambaError, match="does not fit"):
        train(_cfg(mini_data, tmp_path / "c", variant="xs", frames=9, init_from=str(src)))


@pytest.mark.parametrize("freeze", [False, True])
def test_freeze_bn_keeps_the_running_statistics(mini_data, tmp_path, freeze):
    """--freeze-bn: the BatchNorms' running statistics stay the source's through training steps
    and a quick evaluation (which puts the model back in train mode), while the weights move;
    without it they follow the batches."""
    src = tmp_path / "a"
    train(_cfg(mini_data, src, epochs=1, max_steps=2))
    run = _cfg(mini_data, tmp_path / "b", epochs=1, init_from=str(src / "final.pt"),
               max_steps=6, eval_every_steps=3, freeze_bn=freeze, lr=1e-3)  # fmt: skip
    train(run)
    a = load_lifter(src / "final.pt").state_dict()
    b = read_checkpoint(tmp_path / "b" / "last.pt")["state_dict"]
    stats = [k for k in a if "running_" in k]
    weights = [k for k in a if k.endswith("weight") and "running_" not in k]
    assert stats and weights
    assert all(torch.equal(a[k], b[k]) for k in stats) == freeze
    assert any(not torch.equal(a[k], b[k]) for k in weights)


def test_two_d_sources_join_with_plus(mini_data, tmp_path):
    """--two-d gt+sh trains on both 2D sources of the same frames (same 3D targets, different
    inputs); the per-epoch test uses the first source; an empty source list is a one-line error."""
    from hgmamba_core.train import _load_data

    gt, gt_test = _load_data(_cfg(mini_data, tmp_path, two_d="gt"))
    sh, _ = _load_data(_cfg(mini_data, tmp_path, two_d="sh"))
    both, test = _load_data(_cfg(mini_data, tmp_path, two_d="gt+sh"))
    # SH: one camera in the mini file
    assert both.names == gt.names + sh.names and len(sh.names) == 1
    n = len(gt.inputs)
    np.testing.assert_array_equal(both.inputs[:n], gt.inputs)
    np.testing.assert_array_equal(both.inputs[n:], sh.inputs)
    np.testing.assert_array_equal(both.targets[n:], sh.targets)
    same = gt.names.index(sh.names[0])  # the GT clip of the camera that has detections
    a, b = gt.offsets[same], gt.offsets[same + 1]
    np.testing.assert_array_equal(sh.targets, gt.targets[a:b])
    assert not np.allclose(sh.inputs[..., :2], gt.inputs[a:b, :, :2], atol=1e-3)
    np.testing.assert_array_equal(test.inputs, gt_test.inputs)
    with pytest.raises(HGMambaError, match="no 2D source"):
        _load_data(_cfg(mini_data, tmp_path, two_d="+"))
    with pytest.raises(HGMambaError, match="only h36m"):
        _load_data(_cfg(mini_data, tmp_path, two_d="gt+sh", dataset="3dhp"))
