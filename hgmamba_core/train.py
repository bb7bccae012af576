"""One training loop for the lifter, resumable at any checkpoint (mid-epoch included).

Recipe (paper Sec. IV, MotionAGFormer weighting): AdamW (weight decay 0.01), lr 5e-4 decayed
x0.99 per epoch, batch 16, loss = MPJPE + 20 * velocity error (both mean Euclidean distances in
metres on root-relative camera-frame 3D; 20 is MotionAGFormer's lambda_3d_velocity), flip
augmentation, the model's own layer-wise joint shuffle (active in train mode), gradient-norm
clipping at 1.0. Float32 by default: on an H200 bf16 autocast steps were not faster than float32
with the Triton scan (XS, batch 16: 264 vs 191 ms). `amp` (opt-in) turns bf16 autocast on, on
CUDA or the CPU: on a 2-core AMD Zen 5 (AVX512-BF16) an XS step at batch 16 took ~2.9 s against
~3.7 s in float32 (12 steps each, 2 threads).

Outputs in `out/`: `last.pt` (model + optimizer + epoch/step + torch RNG + history, written every
`checkpoint_every` steps and at each epoch end, atomically), `best.pt` (model-only lifter
checkpoint with the best quick test P1, loadable by `load_lifter`), `final.pt` (model-only, the
weights where this call stopped: what a run cut short by --time-budget-min or --max-steps before
its first epoch end has to lift with), `log.jsonl` (one line per epoch, rewritten from the history
stored in last.pt) and `config.json`.
Exact resume: the data order is a pure function of (seed, epoch), the learning rate of the epoch,
and the torch RNG state is restored, so an interrupted run continues bit-for-bit on CPU.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from hgmamba_core import distributed as dist_hooks
from hgmamba_core.data.h36m import TRAIN_SUBJECTS
from hgmamba_core.data.normalize import InputNorm, normalize_windows
from hgmamba_core.data.sources import load_clips
from hgmamba_core.data.wild import WildRecipe, WildWindows, load_world_store
from hgmamba_core.data.windows import ClipStore, TrainWindows
from hgmamba_core.device import resolve_device
from hgmamba_core.errors import HGMambaError
from hgmamba_core.evaluate import _autocast, predict_store, score
from hgmamba_core.fileio import atomic_path, write_text_atomic
from hgmamba_core.model import VariantConfig, build_model, get_variant
from hgmamba_core.model.checkpoint import (
    checkpoint_dict,
    load_weights,
    read_checkpoint,
    save_checkpoint,
)


@dataclass
class TrainConfig:
    """Everything that defines a run; stored in last.pt so `--resume` needs only --out."""

    out: str
    data: str
    variant: str = "xs"
    dataset: str = "h36m"
    two_d: str = "gt"
    epochs: int = 90
    batch_size: int = 16
    lr: float = 5e-4
    lr_decay: float = 0.99  # per epoch, for lr_schedule "exp"
    lr_schedule: str = "exp"  # "exp" (paper: x lr_decay per epoch) or "cosine" (per step)
    warmup_steps: int = 0  # linear warm-up from 0 to lr (both schedules)
    time_budget_min: float = 0.0  # > 0: fix max_steps from the measured speed to fit this budget
    init_from: str = ""  # start from these lifter weights (same variant) instead of random ones
    weight_decay: float = 0.01
    velocity_weight: float = 20.0
    # > 0: the velocity weight ramps linearly from 0 to velocity_weight over this many steps.
    # From the start, the velocity term rewards input-independent (static) predictions: on
    # H36M S1 (4 blocks, T = 9, batch 16, lr 5e-4, 200 steps) the spread of predictions across
    # samples was 15 mm with the weight at 20 against 55 mm with it at 0.
    velocity_warmup_steps: int = 0
    grad_clip: float = 1.0
    layer_scale_init: float = 0.0  # initial layer-scale of every residual unit; 0 = the variant's
    frames: int = 0  # T; 0 = the variant's
    window_stride: int = 0  # distance between training window starts; 0 = T
    frame_stride: int = 1  # take every k-th frame inside a window (1 = native 50 fps)
    flip: bool = True
    # BatchNorm layers keep their running statistics (eval mode) while training: for fine-tuning
    # at small batches. Measured (2-core CPU, shipped XS, gt+sh, lr 8e-5, 100 steps at batch
    # 16): the batch-16 statistics alone took quick GT P1 from 34.0 to 46.4 mm.
    freeze_bn: bool = False
    seed: int = 0
    device: str = "auto"
    amp: bool = False  # bf16 autocast (opt-in, see the module docstring)
    eval_every: int = 1  # epochs; 0 = never
    eval_tile_every: int = 20  # quick eval: every k-th test tile of each clip
    checkpoint_every: int = 200  # steps
    max_steps: int = 0  # stop (with a checkpoint) after this many steps in total; 0 = no cap
    train_subjects: list[str] = field(default_factory=list)  # empty = standard split
    test_subjects: list[str] = field(default_factory=list)
    world_size: int = 1  # processes under torchrun (set by train; see distributed.py)
    # "h36m": fixed (sequence, camera) clips of --two-d (the shipped file's recipe); "wild":
    # windows made per batch from world 3D (data/wild.py). The shares below < 0 mean "the
    # recipe's default"; resolved by resolve_recipe before training.
    recipe: str = "h36m"
    virtual_cameras: float = -1.0  # share of windows through virtual cameras
    detector_noise: float = -1.0  # share of projected windows given detector-like noise
    derive_joints: float = -1.0  # share of windows with front-end derived joints re-made
    stress: float = -1.0  # share of windows with displaced confidence-0 joints
    sh_share: float = -1.0  # share of real-camera windows using SH detections (needs sh in --two-d)
    input_norm: str = ""  # "screen" or "person" (data/normalize.py); "" = the recipe's
    eval_every_steps: int = 0  # > 0: quick evaluation every k steps too (and best.pt)
    eval_max_windows: int = 0  # > 0: quick evaluations use at most this many fixed test windows

    def resolved_frames(self) -> int:
        t = self.frames or get_variant(self.variant).frames
        if t > get_variant(self.variant).frames:
            raise HGMambaError(
                f"--frames {t} exceeds HGMamba-{self.variant}'s T = {get_variant(self.variant).frames}"
            )
        return t


RECIPES = ("h36m", "wild")
# Defaults of each recipe: (virtual_cameras, detector_noise, derive_joints, stress, sh_share,
# input_norm). "h36m" turns every augmentation off (the old behaviour).
_RECIPE_DEFAULTS = {
    "h36m": (0.0, 0.0, 0.0, 0.0, 0.0, "screen"),
    "wild": (0.7, 0.8, 0.75, 0.1, 0.5, "person"),
}


def resolve_recipe(cfg: TrainConfig) -> TrainConfig:
    """cfg with every recipe default (< 0 or "") filled in; unknown recipes fail here."""
    if cfg.recipe not in RECIPES:
        raise HGMambaError(f"unknown --recipe '{cfg.recipe}': choose {' or '.join(RECIPES)}")
    d = _RECIPE_DEFAULTS[cfg.recipe]
    names = ("virtual_cameras", "detector_noise", "derive_joints", "stress", "sh_share")
    values = {n: (getattr(cfg, n) if getattr(cfg, n) >= 0 else d[i]) for i, n in enumerate(names)}
    for n, v in values.items():
        if v > 1.0:
            raise HGMambaError(f"--{n.replace('_', '-')} is a share of windows: 0..1, got {v}")
    out = replace(cfg, **values, input_norm=cfg.input_norm or d[5])
    InputNorm(out.input_norm)  # an unknown mode fails here
    if out.recipe == "h36m" and any(values[n] > 0 for n in names):
        raise HGMambaError(
            "the augmentation flags need --recipe wild (the h36m recipe trains on fixed clips)"
        )
    return out


def wild_recipe(cfg: TrainConfig) -> WildRecipe:
    """The data/wild.py recipe of a resolved config (SH only when --two-d names sh)."""
    has_sh = "sh" in [s for s in cfg.two_d.split("+") if s]
    return WildRecipe(
        virtual_p=cfg.virtual_cameras, sh_p=cfg.sh_share if has_sh else 0.0,
        noise_p=cfg.detector_noise, derive_p=cfg.derive_joints, stress_p=cfg.stress,
    )  # fmt: skip


def recipe_meta(cfg: TrainConfig) -> dict:
    """What a checkpoint records about the data recipe (meta["recipe"]) and input_norm."""
    rec: dict = {"name": cfg.recipe, "two_d": cfg.two_d}
    if cfg.recipe == "wild":
        rec.update(wild_recipe(cfg).to_dict())
    return {"recipe": rec, "input_norm": InputNorm(cfg.input_norm or "screen").to_dict()}


def learning_rate(cfg: TrainConfig, epoch: int, global_step: int, total_steps: int) -> float:
    """The lr of one step: linear warm-up, then x lr_decay per epoch or a cosine to 1 % of lr."""
    warm = min(1.0, (global_step + 1) / cfg.warmup_steps) if cfg.warmup_steps > 0 else 1.0
    if cfg.lr_schedule == "exp":
        return cfg.lr * warm * cfg.lr_decay**epoch
    if cfg.lr_schedule == "cosine":
        span = max(total_steps - cfg.warmup_steps, 1)
        p = min(max(global_step - cfg.warmup_steps, 0) / span, 1.0)
        return cfg.lr * warm * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * p)))
    raise HGMambaError(f"unknown --lr-schedule '{cfg.lr_schedule}': choose exp or cosine")


def velocity_weight_at(cfg: TrainConfig, global_step: int) -> float:
    """The velocity loss weight of one step (a linear ramp over velocity_warmup_steps)."""
    if cfg.velocity_warmup_steps <= 0:
        return cfg.velocity_weight
    return cfg.velocity_weight * min(1.0, global_step / cfg.velocity_warmup_steps)


def budget_steps(cfg: TrainConfig, done: int, seconds: float, steps_timed: int) -> int:
    """max_steps that fits the rest of cfg.time_budget_min, from `steps_timed` steps in `seconds`."""
    left = cfg.time_budget_min * 60.0 - seconds
    return done + max(int(left / max(seconds / steps_timed, 1e-9)), 0)


def model_config(cfg: TrainConfig) -> VariantConfig:
    """The variant's config, with the run's layer-scale init when one is given (stored in checkpoints)."""
    vc = get_variant(cfg.variant)
    return replace(vc, layer_scale_init=cfg.layer_scale_init) if cfg.layer_scale_init > 0 else vc


class Progress(Protocol):
    """What the loop reports; the CLI draws it with Rich, tests pass None."""

    def start_epoch(self, epoch: int, epochs: int, steps: int, done: int) -> None: ...

    def step(self, loss: float, lr: float) -> None: ...

    def end_epoch(self, record: dict) -> None: ...

    def message(self, text: str) -> None: ...


@dataclass
class TrainResult:
    out: Path
    epochs_done: int
    global_step: int
    history: list[dict]
    stopped_early: bool
    model: torch.nn.Module | None = None  # the weights where the run stopped (this process's)


def lifter_loss(pred: torch.Tensor, target: torch.Tensor, velocity_weight: float) -> torch.Tensor:
    """Mean per-joint position error + weight * mean per-joint velocity error (same units)."""
    pos = torch.linalg.vector_norm(pred - target, dim=-1).mean()
    if pred.shape[1] < 2 or velocity_weight == 0:
        return pos
    vel = torch.linalg.vector_norm(
        torch.diff(pred, dim=1) - torch.diff(target, dim=1), dim=-1
    ).mean()
    return pos + velocity_weight * vel


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _meta(cfg: TrainConfig, length: int, extra: dict | None = None) -> dict:
    return {
        "trained_by": "hgmamba train",
        "dataset": cfg.dataset,
        "two_d": cfg.two_d,
        "frames": length,
        "frame_stride": cfg.frame_stride,
        "units": "metres, camera frame, root-relative (root = H36M joint 0, pelvis)",
        "input": "normalize_screen x, y + confidence",
        "world_size": cfg.world_size,
        **recipe_meta(cfg),
        **(extra or {}),
    }


def _load_test(cfg: TrainConfig, source: str) -> ClipStore | None:
    if cfg.eval_every <= 0 and cfg.eval_every_steps <= 0:
        return None
    clips = load_clips(cfg.dataset, cfg.data, "test", source, cfg.test_subjects or None)
    if cfg.eval_max_windows > 0:  # a fixed, evenly spread subset of the clips (e.g. 1 in 8)
        clips = clips[:: max(1, -(-len(clips) // cfg.eval_max_windows))]
    return ClipStore.from_clips(clips)


def _load_data(cfg: TrainConfig) -> tuple[ClipStore | None, ClipStore | None]:
    """Train clips of every 2D source in cfg.two_d ("gt+sh": both, so the lifter sees clean and
    detected keypoints); the per-epoch test uses the first source. The wild recipe builds its
    windows from world 3D (see _training_windows) and loads no train clips here."""
    sources = [s for s in cfg.two_d.split("+") if s]
    if not sources:
        raise HGMambaError(f"no 2D source in --two-d '{cfg.two_d}': use e.g. gt, sh or gt+sh")
    if len(sources) > 1 and cfg.dataset != "h36m":
        raise HGMambaError(f"--two-d '{cfg.two_d}': only h36m has several 2D sources")
    if cfg.recipe == "wild":
        if cfg.dataset != "h36m" or any(s not in ("gt", "sh") for s in sources):
            raise HGMambaError("--recipe wild trains on Human3.6M world 3D (--two-d gt, gt+sh)")
        return None, _load_test(cfg, "gt")
    subjects = cfg.train_subjects or None
    train = ClipStore.from_clips(
        [c for s in sources for c in load_clips(cfg.dataset, cfg.data, "train", s, subjects)]
    )
    return train, _load_test(cfg, sources[0])


def _training_windows(
    cfg: TrainConfig, store: ClipStore | None, length: int, stride: int
) -> TrainWindows | WildWindows:
    if cfg.recipe == "wild":
        subjects = cfg.train_subjects or list(TRAIN_SUBJECTS)
        world = load_world_store(cfg.data, subjects, with_sh=wild_recipe(cfg).sh_p > 0)
        return WildWindows(world, wild_recipe(cfg), length, stride, cfg.frame_stride, cfg.flip)
    assert store is not None
    return TrainWindows(store, length, stride, cfg.frame_stride, cfg.flip)


def quick_eval_tile_every(cfg: TrainConfig, store: ClipStore, length: int) -> int:
    """The tile step of quick evaluations: cfg.eval_tile_every, raised so that at most
    cfg.eval_max_windows fixed test windows are scored (they must not eat the training time)."""
    every = max(1, cfg.eval_tile_every)
    if cfg.eval_max_windows > 0:
        tiles = int(np.sum(-(-store.lengths // (length * cfg.frame_stride)) * cfg.frame_stride))
        every = max(every, -(-tiles // cfg.eval_max_windows))
    return every


RESUMABLE = ("epochs", "max_steps", "device", "checkpoint_every", "eval_every", "eval_every_steps")


def train(
    cfg: TrainConfig,
    resume: bool = False,
    progress: Progress | None = None,
    overrides: Collection[str] | None = None,
) -> TrainResult:
    """Train (or continue) the run in cfg.out; returns when done or after cfg.max_steps steps.
    On resume, `overrides` names the RESUMABLE fields cfg changes (the CLI: the options given);
    None: all of them. The others keep the stored run's values."""
    out = Path(cfg.out)
    last_path, best_path = out / "last.pt", out / "best.pt"
    state = None
    if resume:
        if not last_path.is_file():
            raise HGMambaError(f"nothing to resume: {last_path} does not exist")
        state = read_checkpoint(last_path)
        if "train" not in state:
            raise HGMambaError(f"{last_path} is not a resumable training checkpoint")
        stored = TrainConfig(
            **{
                k: v
                for k, v in state["train"]["config"].items()
                if k in TrainConfig.__dataclass_fields__
            }
        )
        # Only the run length, device and checkpoint cadence may change on resume.
        # A new --time-budget-min re-times the run (a new session on another machine); without
        # one, a budgeted run keeps the step count its budget fixed (the cosine depends on it).
        new_budget = cfg.time_budget_min > 0
        take = set(RESUMABLE if overrides is None else overrides) & set(RESUMABLE)
        if new_budget:
            take.add("max_steps")  # re-timed from the speed unless --max-steps fixes it
        keep_steps = stored.time_budget_min > 0 and not new_budget and not cfg.max_steps
        for name in sorted(take):
            if name == "max_steps" and keep_steps:
                continue
            setattr(stored, name, getattr(cfg, name))
        if new_budget:
            stored.time_budget_min = cfg.time_budget_min
        stored.out, stored.data = cfg.out, cfg.data or stored.data
        cfg = stored
    elif last_path.exists():
        raise HGMambaError(
            f"{out} already holds a run ({last_path}): pass --resume or choose another --out"
        )

    learning_rate(cfg, 0, 0, 1)  # an unknown --lr-schedule fails here, before any loading
    cfg = resolve_recipe(cfg)  # and an unknown recipe / share
    norm = InputNorm(cfg.input_norm)
    ctx, device = dist_hooks.setup(cfg.device)  # torchrun: join the group (distributed.py)
    dist_hooks.check_batch(cfg.batch_size, ctx, cfg.time_budget_min)
    cfg.world_size, main = ctx.world_size, ctx.is_main
    progress = progress if main else None
    length = cfg.resolved_frames()
    window_stride = cfg.window_stride or length
    torch.manual_seed(cfg.seed)
    model = build_model(model_config(cfg)).to(device)
    if cfg.init_from and state is None:
        load_weights(model, cfg.init_from)  # a different variant is a one-line error
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    amp = cfg.amp

    train_store, test_store = _load_data(cfg)
    test_store = test_store if main else None  # process 0 alone evaluates
    windows = _training_windows(cfg, train_store, length, window_stride)
    del train_store
    steps = windows.steps_per_epoch(cfg.batch_size)
    if steps < 1:
        raise HGMambaError(
            f"only {windows.num_windows} training windows for batch size {cfg.batch_size}: lower --batch-size"
        )

    epoch, step_in_epoch, global_step = 0, 0, 0
    history: list[dict] = []
    best = math.inf
    if state is not None:
        model.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["train"]["optimizer"])
        t = state["train"]
        epoch, step_in_epoch, global_step = (
            int(t["epoch"]),
            int(t["step_in_epoch"]),
            int(t["global_step"]),
        )
        history, best = list(t["history"]), float(t["best"])
        _set_rng_state(t["rng"], device)
    else:
        out.mkdir(parents=True, exist_ok=True)
    if main:
        write_text_atomic(out / "config.json", json.dumps(asdict(cfg), indent=2) + "\n")

    def save_last(ep: int, st: int, loss_sum: float, loss_n: int) -> None:
        if not main:
            return
        train_state = {
            "config": asdict(cfg), "optimizer": opt.state_dict(), "epoch": ep, "step_in_epoch": st,
            "global_step": global_step, "history": history, "best": best, "rng": _rng_state(device),
            "epoch_loss": [loss_sum, loss_n], "step_evals": step_evals,
        }  # fmt: skip
        with atomic_path(last_path) as tmp:
            torch.save(checkpoint_dict(model, _meta(cfg, length), train=train_state), tmp)

    loss_sum, loss_n = state["train"]["epoch_loss"] if state is not None else (0.0, 0)
    # On CUDA the loss is read back every `sync_every` steps only, so the CPU can queue kernels
    # ahead of the GPU; on the CPU every step (bit-identical resume does not depend on it).
    sync_every = 25 if device.type == "cuda" else 1
    loss_acc, pending, shown = torch.zeros((), device=device), 0, float("nan")
    t_start, start_step = time.time(), global_step
    probe_at = start_step + 30 if cfg.time_budget_min > 0 and not cfg.max_steps else -1
    stopped = False
    net = dist_hooks.wrap(model, ctx, device)  # DDP averages the gradients; `model` is saved
    step_evals: list[dict] = list(state["train"].get("step_evals", [])) if state else []
    tile_every = quick_eval_tile_every(cfg, test_store, length) if test_store is not None else 1

    def quick_eval() -> dict:
        """P1/P2 on the fixed quick-test subset (every tile_every-th test window)."""
        pred, done = predict_store(
            model, test_store, length, cfg.frame_stride, flip=True, amp=amp,
            tile_every=tile_every, norm=norm,
        )  # fmt: skip
        rep = score(cfg.dataset, test_store, pred, done)
        return {**{f"test_{k}": v for k, v in rep.average.items()}, "test_frames": rep.frames}

    def step_eval() -> None:
        """The periodic quick evaluation of long epochs: evals.jsonl, and best.pt if better."""
        nonlocal best
        rec = {"epoch": epoch, "global_step": global_step, "lr": lr, **quick_eval()}
        rec["seconds"] = round(time.time() - t_start, 1)
        if rec["test_mpjpe_mm"] < best:
            best = rec["test_mpjpe_mm"]
            save_checkpoint(best_path, model, _meta(cfg, length, dict(rec)))
            rec["best"] = True
        step_evals.append(rec)
        write_text_atomic(out / "evals.jsonl", "".join(json.dumps(r) + "\n" for r in step_evals))
        if progress:
            progress.message(
                f"step {global_step}: quick test P1 {rec['test_mpjpe_mm']:.1f} mm,"
                f" P2 {rec['test_p_mpjpe_mm']:.1f} mm ({rec['test_frames']} frames)"
                + (" best" if rec.get("best") else "")
            )

    model.train()
    frozen_bn = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    frozen_bn = frozen_bn if cfg.freeze_bn else []

    def flush() -> None:
        nonlocal loss_acc, pending, shown, loss_sum, loss_n
        if pending:
            value = float(dist_hooks.mean(loss_acc, ctx))  # the global batch's loss
            if not math.isfinite(value):
                raise HGMambaError(
                    f"training diverged (loss {value / pending}) at epoch {epoch}, step {step_in_epoch}"
                )
            loss_sum, loss_n, shown = loss_sum + value, loss_n + pending, value / pending
            loss_acc, pending = torch.zeros((), device=device), 0

    while epoch < cfg.epochs and not stopped:
        if progress:
            progress.start_epoch(epoch, cfg.epochs, steps, step_in_epoch)
        t0 = time.time()
        lr = learning_rate(cfg, epoch, global_step, cfg.max_steps or cfg.epochs * steps)
        for batch in windows.batches(epoch, cfg.seed, cfg.batch_size, start_step=step_in_epoch):
            lr = learning_rate(cfg, epoch, global_step, cfg.max_steps or cfg.epochs * steps)
            for g in opt.param_groups:
                g["lr"] = lr
            for m in frozen_bn:  # again each step: quick evaluations put the model back in train()
                m.eval()
            inputs = normalize_windows(dist_hooks.shard(batch.inputs, ctx), norm)
            x = torch.from_numpy(inputs).to(device, non_blocking=True)
            y = torch.from_numpy(dist_hooks.shard(batch.targets, ctx)).to(device, non_blocking=True)
            with _autocast(device, amp):
                pred = net(x)
            loss = lifter_loss(pred.float(), y, velocity_weight_at(cfg, global_step))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            step_in_epoch += 1
            global_step += 1
            loss_acc, pending = loss_acc + loss.detach(), pending + 1
            if pending >= sync_every or step_in_epoch >= steps:
                flush()
            if progress:
                progress.step(shown, lr)
            if global_step == probe_at:
                flush()
                cfg.max_steps = budget_steps(
                    cfg, global_step, time.time() - t_start, global_step - start_step
                )
                write_text_atomic(out / "config.json", json.dumps(asdict(cfg), indent=2) + "\n")
                if progress:
                    progress.message(
                        f"time budget {cfg.time_budget_min} min: {cfg.max_steps} steps"
                    )
            over_time = cfg.time_budget_min > 0 and time.time() - t_start > cfg.time_budget_min * 60
            if (cfg.max_steps and global_step >= cfg.max_steps) or over_time:
                stopped = step_in_epoch < steps or over_time
                if stopped:
                    flush()
                    save_last(epoch, step_in_epoch, loss_sum, loss_n)
                    break
            if (
                test_store is not None
                and cfg.eval_every_steps
                and global_step % cfg.eval_every_steps == 0
                and step_in_epoch < steps
            ):
                flush()
                step_eval()
            if (
                cfg.checkpoint_every
                and global_step % cfg.checkpoint_every == 0
                and step_in_epoch < steps
            ):
                flush()
                save_last(epoch, step_in_epoch, loss_sum, loss_n)
        flush()
        if stopped:
            break
        record: dict = {
            "epoch": epoch + 1, "global_step": global_step, "lr": lr,
            "train_loss": loss_sum / max(loss_n, 1), "epoch_seconds": round(time.time() - t0, 1),
        }  # fmt: skip
        if test_store is not None and cfg.eval_every and (epoch + 1) % cfg.eval_every == 0:
            record.update(quick_eval())
            if record["test_mpjpe_mm"] < best:
                best = record["test_mpjpe_mm"]
                save_checkpoint(
                    best_path, model, _meta(cfg, length, {"epoch": epoch + 1, **record})
                )
                record["best"] = True
        elif test_store is None and main:
            save_checkpoint(best_path, model, _meta(cfg, length, {"epoch": epoch + 1, **record}))
        history.append(record)
        epoch += 1
        step_in_epoch, loss_sum, loss_n = 0, 0.0, 0
        save_last(epoch, 0, 0.0, 0)
        if main:
            write_text_atomic(out / "log.jsonl", "".join(json.dumps(r) + "\n" for r in history))
        if progress:
            progress.end_epoch(record)
        if cfg.max_steps and global_step >= cfg.max_steps:
            stopped = epoch < cfg.epochs
    final = {"global_step": global_step, "epochs_done": epoch, "stopped_early": stopped}
    if main:
        save_checkpoint(out / "final.pt", model, _meta(cfg, length, {**final, "history": history}))
    dist_hooks.teardown(ctx)
    return TrainResult(out, epoch, global_step, history, stopped, model)


def seconds_per_step(cfg: TrainConfig, steps: int = 5) -> float:
    """Measure the mean wall time of `steps` training steps on random inputs (after one warm-up)."""
    device = resolve_device(cfg.device)
    length = cfg.resolved_frames()
    model = build_model(model_config(cfg)).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = np.random.default_rng(0)
    x = torch.from_numpy(gen.normal(0, 0.5, (cfg.batch_size, length, 17, 3)).astype(np.float32)).to(
        device
    )
    y = torch.from_numpy(gen.normal(0, 0.3, (cfg.batch_size, length, 17, 3)).astype(np.float32)).to(
        device
    )
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        loss = lifter_loss(model(x), y, cfg.velocity_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:
            times.append(time.perf_counter() - t0)
    return float(np.mean(times))
