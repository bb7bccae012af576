"""One process of a `torchrun` training job for test_distributed.py: trains, then saves its
own weights and history as rank<R>.pt so the test can compare the processes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from hgmamba_core.train import TrainConfig, train


def main(data: str, out: str, max_steps: int) -> None:
    cfg = TrainConfig(
        out=out, data=data, variant="tiny", epochs=1, batch_size=8, train_subjects=["S1"],
        eval_every=0, checkpoint_every=0, seed=3, device="cpu", max_steps=max_steps,
    )  # fmt: skip
    res = train(cfg)
    rank = int(os.environ.get("RANK", "0"))  # torchrun's; the group is closed by now
    torch.save(
        {"state_dict": res.model.state_dict(), "history": res.history, "steps": res.global_step},
        Path(out) / f"rank{rank}.pt",
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
