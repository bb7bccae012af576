"""`hgmamba train`: parse options, run hgmamba_core.train with a Rich progress bar."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from hgmamba_core.errors import HGMambaError


class RichProgress:
    """Progress callbacks of the training loop drawn as one Rich bar per epoch."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.2e}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=console, transient=False,
        )  # fmt: skip
        self.task = None
        self.plain = not console.is_terminal  # background job: a text line every `every` steps
        self.every = 25
        self.t0 = 0.0
        self.done = 0
        self.first = 0
        self.steps = 0
        self.epoch = ""

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def start_epoch(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.t0, self.done, self.first = time.time(), 0, done
        self.steps, self.epoch = steps, f"{epoch + 1}/{epochs}"
        self.task = self.bar.add_task(
            "train",
            total=steps,
            completed=done,
            epoch=f"{epoch + 1}/{epochs}",
            loss=float("nan"),
            lr=0.0,
        )

    def step(self, loss: float, lr: float) -> None:
        self.bar.update(self.task, advance=1, loss=loss, lr=lr)
        self.done += 1
        if self.plain and self.done % self.every == 0:
            per = (time.time() - self.t0) / self.done
            at = self.first + self.done
            eta = per * (self.steps - at)
            self.console.print(
                f"epoch {self.epoch} step {at}/{self.steps} loss {loss:.4f} lr {lr:.2e}"
                f" {per:.2f} s/step, epoch ETA {eta / 60:.0f} min"
            )

    def end_epoch(self, record: dict) -> None:
        parts = [f"epoch {record['epoch']}", f"loss {record['train_loss']:.4f}"]
        if "test_mpjpe_mm" in record:
            parts.append(f"quick test P1 {record['test_mpjpe_mm']:.1f} mm")
        if "test_p_mpjpe_mm" in record:
            parts.append(f"P2 {record['test_p_mpjpe_mm']:.1f} mm")
        if "test_pck150" in record:
            parts.append(f"PCK {record['test_pck150']:.1f}")
        if record.get("best"):
            parts.append("[green]best[/green]")
        self.bar.console.print(" · ".join(parts))

    def message(self, text: str) -> None:
        self.bar.console.print(text)


def _subjects(s: str | None) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()] if s else []


def train(
    data: Annotated[Path, typer.Option(help="Data folder (h36m) or folder/file (3dhp).")],
    out: Annotated[
        Path, typer.Option(help="Run folder: last.pt, best.pt, final.pt, log.jsonl, config.json.")
    ],
    variant: Annotated[str, typer.Option(help="Lifter variant: xs, s, b (tiny for tests).")] = "xs",
    dataset: Annotated[str, typer.Option(help="h36m or 3dhp.")] = "h36m",
    two_d: Annotated[
        str,
        typer.Option(
            "--two-d",
            help="2D source: gt, sh (ours) or a VideoPose3D 2D name; join with + to train on"
            " several (gt+sh). Default: gt for --recipe h36m, gt+sh for --recipe wild.",
        ),
    ] = "",
    recipe: Annotated[
        str,
        typer.Option(
            help="h36m: fixed camera clips of --two-d (the shipped file's recipe); wild: virtual"
            " cameras, detector-like 2D, front-end joints, person normalization (each a flag below)."
        ),
    ] = "h36m",
    virtual_cameras: Annotated[
        float,
        typer.Option(help="wild: share of windows seen by virtual cameras (-1 = recipe's, 0.7)."),
    ] = -1.0,
    detector_noise: Annotated[
        float,
        typer.Option(help="wild: share of projected windows with detector-like noise (-1: 0.8)."),
    ] = -1.0,
    derive_joints: Annotated[
        float,
        typer.Option(
            help="wild: share of windows whose pelvis/spine/thorax are re-made as the COCO"
            " front end makes them (-1: 0.75)."
        ),
    ] = -1.0,
    stress: Annotated[
        float,
        typer.Option(
            help="wild: share of windows with up to 20 % confidence-0 displaced joints (-1: 0.1)."
        ),
    ] = -1.0,
    sh_share: Annotated[
        float,
        typer.Option(help="wild: share of real-camera windows using SH detections (-1: 0.5)."),
    ] = -1.0,
    input_norm: Annotated[
        str,
        typer.Option(
            help="screen (image coordinates) or person (window box centred and scaled); the"
            " checkpoint records it and eval/lift apply it. Default: the recipe's (h36m screen,"
            " wild person: measured, see README)."
        ),
    ] = "",
    epochs: Annotated[
        int | None, typer.Option(help="Number of epochs (paper and default: 90).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Windows per batch (paper: 16).")] = 16,
    lr: Annotated[float, typer.Option(help="AdamW learning rate, decayed x0.99 per epoch.")] = 5e-4,
    lr_schedule: Annotated[
        str, typer.Option(help="exp (x0.99 per epoch, the paper's) or cosine (per step, to 1 %).")
    ] = "exp",
    warmup_steps: Annotated[int, typer.Option(help="Linear lr warm-up steps.")] = 0,
    time_budget_min: Annotated[
        float,
        typer.Option(help="Fit the run into this many minutes (sets --max-steps from the speed)."),
    ] = 0.0,
    init_from: Annotated[
        str, typer.Option(help="Start from this lifter checkpoint's weights (same variant).")
    ] = "",
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = 0.01,
    velocity_weight: Annotated[float, typer.Option(help="lambda of the velocity loss.")] = 20.0,
    velocity_warmup_steps: Annotated[
        int,
        typer.Option(help="Ramp lambda linearly from 0 over this many steps (0 = paper: none)."),
    ] = 0,
    frames: Annotated[int, typer.Option(help="Frames per window T (0 = the variant's).")] = 0,
    layer_scale_init: Annotated[
        float, typer.Option(help="Initial layer scale of the residual units (0 = the variant's).")
    ] = 0.0,
    window_stride: Annotated[
        int, typer.Option(help="Frames between training window starts (0 = T, windows tile).")
    ] = 0,
    frame_stride: Annotated[
        int, typer.Option(help="Use every k-th frame inside a window (1 = native 50 fps).")
    ] = 1,
    no_flip: Annotated[bool, typer.Option("--no-flip", help="No flip augmentation.")] = False,
    freeze_bn: Annotated[
        bool,
        typer.Option(
            "--freeze-bn",
            help="BatchNorms keep their running statistics while training (for fine-tuning at"
            " small batches).",
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed for weights, data order and augmentation.")] = 0,
    device: Annotated[str | None, typer.Option(help="auto (default), cpu or cuda.")] = None,
    amp: Annotated[
        bool, typer.Option("--amp", help="bf16 autocast (CUDA or a CPU with AVX512-BF16).")
    ] = False,
    eval_every: Annotated[
        int | None,
        typer.Option(help="Quick test evaluation every k epochs (0 = never; default 1)."),
    ] = None,
    eval_tile_every: Annotated[
        int, typer.Option(help="Quick evaluation uses every k-th test window.")
    ] = 20,
    eval_every_steps: Annotated[
        int | None,
        typer.Option(
            help="Also a quick evaluation (and best.pt) every k steps (0 = off, default)."
        ),
    ] = None,
    eval_max_windows: Annotated[
        int, typer.Option(help="Quick evaluations score at most this many fixed test windows.")
    ] = 0,
    checkpoint_every: Annotated[
        int | None, typer.Option(help="Write last.pt every k steps (default 200).")
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option(help="Stop after this many steps in total (0 = no cap, default).")
    ] = None,
    train_subjects: Annotated[str, typer.Option(help="Comma list (default S1,S5,S6,S7,S8).")] = "",
    test_subjects: Annotated[str, typer.Option(help="Comma list (default S9,S11).")] = "",
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the run in --out exactly; its stored settings win except --epochs,"
            " --max-steps, --time-budget-min, --device, --checkpoint-every, --eval-every and"
            " --eval-every-steps when given.",
        ),
    ] = False,
) -> None:
    """Train a lifter (paper recipe by default); --resume continues an interrupted run exactly."""
    resumable = {
        "epochs": epochs, "max_steps": max_steps, "device": device,
        "checkpoint_every": checkpoint_every, "eval_every": eval_every,
        "eval_every_steps": eval_every_steps,
    }  # fmt: skip
    given = {k for k, v in resumable.items() if v is not None}  # what --resume may change
    if (epochs is not None and epochs < 1) or batch_size < 1 or lr <= 0:
        raise HGMambaError("--epochs and --batch-size must be >= 1 and --lr > 0")
    if warmup_steps < 0 or time_budget_min < 0 or velocity_warmup_steps < 0:
        raise HGMambaError(
            "--warmup-steps, --velocity-warmup-steps and --time-budget-min must be >= 0"
        )
    from hgmamba_core.train import TrainConfig  # torch: only when the command runs
    from hgmamba_core.train import train as run_training

    defaults = TrainConfig.__dataclass_fields__
    epochs, max_steps, device, checkpoint_every, eval_every, eval_every_steps = (
        defaults[k].default if v is None else v for k, v in resumable.items()
    )

    recipe = recipe.lower()
    two_d = two_d or ("gt+sh" if recipe == "wild" else "gt")
    cfg = TrainConfig(
        out=str(out), data=str(data), variant=variant.lower(), dataset=dataset.lower(), two_d=two_d,
        recipe=recipe, virtual_cameras=virtual_cameras, detector_noise=detector_noise,
        derive_joints=derive_joints, stress=stress, sh_share=sh_share, input_norm=input_norm.lower(),
        eval_every_steps=eval_every_steps, eval_max_windows=eval_max_windows,
        epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
        lr_schedule=lr_schedule.lower(), warmup_steps=warmup_steps, time_budget_min=time_budget_min,
        init_from=init_from,
        velocity_weight=velocity_weight, velocity_warmup_steps=velocity_warmup_steps, frames=frames, layer_scale_init=layer_scale_init, window_stride=window_stride,
        frame_stride=frame_stride, flip=not no_flip, freeze_bn=freeze_bn, seed=seed, device=device, amp=amp,
        eval_every=eval_every, eval_tile_every=eval_tile_every, checkpoint_every=checkpoint_every,
        max_steps=max_steps, train_subjects=_subjects(train_subjects),
        test_subjects=_subjects(test_subjects),
    )  # fmt: skip
    from hgmamba_core.distributed import env_context

    if not env_context().is_main:  # under torchrun, process 0 alone reports (distributed.py)
        run_training(cfg, resume=resume, progress=None, overrides=given)
        return
    console = Console(stderr=True)
    with RichProgress(console) as progress:
        res = run_training(cfg, resume=resume, progress=progress, overrides=given)
    state = "stopped (resume with --resume)" if res.stopped_early else "finished"
    console.print(
        f"{state}: {res.epochs_done} epochs, {res.global_step} steps; checkpoints in {res.out}"
    )
