"""Multi-process training under `torchrun` (DDP): the few hooks train.py calls.

`torchrun --nproc-per-node N -m hgmamba_cli.app train ...` starts N processes with RANK,
LOCAL_RANK and WORLD_SIZE set; without them (a plain `hgmamba train`) every hook here is a
no-op and training is single-process as before.

Rules (also in the README):
- `--batch-size` is the *global* batch: every process takes 1/N of each batch, so it must be
  divisible by N. The learning rate is not rescaled: N processes on batch B follow the same
  trajectory as one process on batch B (same data, same loss, same updates, up to float
  summation order). To train on a larger batch, raise --batch-size (and --lr if you want the
  linear-scaling rule) yourself.
- Data order: all processes walk the same deterministic (seed, epoch) order of global batches
  and process r takes rows r, r + N, r + 2N, ... of each (DistributedSampler's strided split,
  applied per batch), which keeps mid-epoch `--resume` exact and lets a run resume with another N.
- Backend: nccl when the processes train on CUDA, gloo on the CPU. Each CUDA process uses the
  GPU of its LOCAL_RANK.
- Process 0 alone writes checkpoints, logs and config.json, runs the per-epoch evaluation and
  reports progress; checkpoints record `world_size` in their metadata.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
from torch import nn

from hgmamba_core.device import resolve_device
from hgmamba_core.errors import HGMambaError


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the job (world_size 1: not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Process 0: the one that writes files and prints."""
        return self.rank == 0


def env_context() -> DistContext:
    """The torchrun environment variables, read (not yet initialized)."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    rank = int(os.environ.get("RANK", "0") or 0)
    local = int(os.environ.get("LOCAL_RANK", str(rank)) or 0)
    return DistContext(rank=rank, world_size=world, local_rank=local)


def setup(device_arg: str) -> tuple[DistContext, torch.device]:
    """Join the process group if torchrun started us; returns (context, this process's device)."""
    ctx = env_context()
    device = resolve_device(device_arg)
    if not ctx.enabled:
        return ctx, device
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timedelta(minutes=30))
    return DistContext(ctx.rank, ctx.world_size, ctx.local_rank, backend), device


def check_batch(batch_size: int, ctx: DistContext, time_budget_min: float = 0.0) -> None:
    """The global batch must split evenly, or the processes' losses would weigh rows unequally;
    a time budget would let each process stop at its own step (and wait forever for the rest)."""
    if ctx.enabled and time_budget_min > 0:
        raise HGMambaError(
            "--time-budget-min is single-process only: use --max-steps under torchrun"
        )
    if batch_size % ctx.world_size:
        raise HGMambaError(
            f"--batch-size {batch_size} (the global batch) is not divisible by the "
            f"{ctx.world_size} processes: use a multiple of {ctx.world_size}"
        )


class GlobalBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d on (rows, channels) whose training statistics are the global batch's.

    The processes add up their rows' sums and sums of squares with a differentiable
    all-reduce, so N processes normalize (and back-propagate) as one process on the whole batch
    would; with per-process statistics the Hyper-GCN's BatchNorms would make the N-process loss
    differ from the single-process one. torch's SyncBatchNorm would do this too, but only on
    CUDA; this one also runs on gloo. Outside training or a process group it is BatchNorm1d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce  # differentiable

        c = x.shape[1]
        count = torch.full((1,), float(x.shape[0]), dtype=x.dtype, device=x.device)
        with warnings.catch_warnings():  # deprecated for a private successor; still public
            warnings.simplefilter("ignore", FutureWarning)
            stats = all_reduce(torch.cat([x.sum(0), (x * x).sum(0), count]))  # SUM
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0.0)
        y = (x - mean) * torch.rsqrt(var + self.eps)
        if self.affine:
            y = y * self.weight + self.bias
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = (
                    self.momentum
                    if self.momentum is not None
                    else 1.0 / float(self.num_batches_tracked)
                )
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                unbiased = var.detach() * (n / (n - 1).clamp_min(1.0))
                self.running_var.mul_(1 - m).add_(unbiased, alpha=m)
        return y


def global_batchnorm(model: nn.Module) -> nn.Module:
    """Every BatchNorm1d of the model becomes a GlobalBatchNorm1d, in place: only the class
    changes (it adds no state), so the optimizer keeps the same parameter tensors."""
    for m in model.modules():
        if type(m) is nn.BatchNorm1d:
            m.__class__ = GlobalBatchNorm1d
    return model


def wrap(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """DDP around the model when distributed (it averages gradients, its BatchNorms use the
    global batch's statistics); the model itself if not."""
    if not ctx.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    global_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def shard(rows: np.ndarray, ctx: DistContext) -> np.ndarray:
    """This process's rows of a global batch: rank, rank + N, ... (DistributedSampler's split)."""
    return np.ascontiguousarray(rows[ctx.rank :: ctx.world_size]) if ctx.enabled else rows


def mean(value: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """The mean of a scalar over the processes (for logging the global loss)."""
    if not ctx.enabled:
        return value
    import torch.distributed as dist

    out = value.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / ctx.world_size


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        import torch.distributed as dist

        dist.barrier()


def teardown(ctx: DistContext) -> None:
    """Leave the process group (after a final barrier, so no process exits mid-collective)."""
    if ctx.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
