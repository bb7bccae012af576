"""torchrun DDP training: two gloo processes on the mini H36M data equal one process on the
same global batch (same weights on every process, same loss), and --resume works under torchrun.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from h36m_tmpdata import write_mini_h36m

from hgmamba_core.distributed import DistContext, check_batch, shard
from hgmamba_core.errors import HGMambaError
from hgmamba_core.model import build_model
from hgmamba_core.model.checkpoint import read_checkpoint
from hgmamba_core.train import TrainConfig, train

BN_INVISIBLE = re.compile(
    r"hg_(spatial|temporal)\.(norm1\.bias|mixer\.(part\.|body\.)?proj\.bias)$"
)
TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


@pytest.fixture(scope="module")
def mini_data(h36m_dir, tmp_path_factory):
    return write_mini_h36m(h36m_dir, tmp_path_factory.mktemp("h36m"), frames=120)


def _torchrun(*args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)]),
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={nproc}", *args]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def test_shard_is_the_strided_split_and_batches_must_divide():
    rows = torch.arange(8).numpy()
    assert shard(rows, DistContext(1, 2)).tolist() == [1, 3, 5, 7]
    assert shard(rows, DistContext()).tolist() == list(range(8))
    with pytest.raises(HGMambaError, match="not divisible"):
        check_batch(9, DistContext(0, 2))
    with pytest.raises(HGMambaError, match="single-process"):
        check_batch(8, DistContext(0, 2), time_budget_min=5)


@pytest.mark.slow
def test_two_gloo_processes_equal_one_process(mini_data, tmp_path):
    steps = 6
    single = train(TrainConfig(
        out=str(tmp_path / "single"), data=str(mini_data), variant="tiny", epochs=1,
        batch_size=8, train_subjects=["S1"], eval_every=0, checkpoint_every=0, seed=3,
        device="cpu", max_steps=steps,
    ))  # fmt: skip
    out = tmp_path / "ddp"
    _torchrun(str(TESTS / "ddp_worker.py"), str(mini_data), str(out), str(steps))
    r0, r1 = (torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["steps"] == r1["steps"] == single.global_step == steps
    ref = single.model.state_dict()
    diffs = []
    for k, v in r0["state_dict"].items():
        torch.testing.assert_close(v, r1["state_dict"][k], rtol=0, atol=0, msg=k)  # identical
        if not BN_INVISIBLE.search(k):
            diffs.append((v.float() - ref[k].float()).abs().flatten())
    # = one process, up to float summation order: AdamW (steps of ~lr) turns the sign of tiny
    # gradient components into rare differences up to ~lr. A broken split (per-process
    # BatchNorm statistics, gradients not averaged, wrong rows) moves nearly every weight by
    # ~lr = 5e-4 (median), where a right one stays near 1e-8.
    d = torch.cat(diffs)
    assert d.median() < 1e-6, d.median()
    assert (d > 5e-5).float().mean() < 0.01, (d > 5e-5).float().mean()
    torch.manual_seed(3)
    assert not torch.equal(build_model("tiny").head.weight, ref["head.weight"])  # it trained
    last = read_checkpoint(out / "last.pt")
    assert last["meta"]["world_size"] == 2 and last["train"]["config"]["world_size"] == 2
    assert read_checkpoint(tmp_path / "single" / "last.pt")["meta"]["world_size"] == 1
    # the loss each process logged is the global batch's: the single process's epoch loss
    loss_ddp = last["train"]["epoch_loss"]
    loss_one = read_checkpoint(tmp_path / "single" / "last.pt")["train"]["epoch_loss"]
    assert loss_ddp[1] == loss_one[1] == steps
    assert loss_ddp[0] == pytest.approx(loss_one[0], rel=1e-5)


@pytest.mark.slow
def test_resume_under_torchrun_equals_an_uninterrupted_run(mini_data, tmp_path):
    base = ["-m", "hgmamba_cli.app", "train", "--data", str(mini_data), "--variant", "tiny",
            "--epochs", "1", "--batch-size", "8", "--train-subjects", "S1", "--eval-every", "0",
            "--seed", "3", "--device", "cpu", "--checkpoint-every", "0"]  # fmt: skip
    _torchrun(*base, "--out", str(tmp_path / "full"), "--max-steps", "6")
    _torchrun(*base, "--out", str(tmp_path / "part"), "--max-steps", "3")
    _torchrun(*base, "--out", str(tmp_path / "part"), "--max-steps", "6", "--resume")
    a = read_checkpoint(tmp_path / "full" / "last.pt")
    b = read_checkpoint(tmp_path / "part" / "last.pt")
    assert a["train"]["global_step"] == b["train"]["global_step"] == 6
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(v, b["state_dict"][k], rtol=0, atol=0, msg=k)
    assert b["meta"]["world_size"] == 2
