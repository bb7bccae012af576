"""On the GPU machine: one time-budgeted `hgmamba train` run whose state survives the lease.

The device returns files of at most 16 MiB, so the resumable last.pt (model + AdamW moments,
~33 MB for XS) comes back split into parts, next to a model-only `<name>_final.pt`. A later
session carries the parts back in .devcarry/resume/<name>/ and passes --resume: the run goes
on exactly where it stopped (same data order, RNG and optimizer state).

    python3 tools/device/train_run.py --name xs_gt --variant xs --budget-min 7 [--resume]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

PART_BYTES = 15 * 2**20


def split_file(path: Path, out_dir: Path, stem: str) -> list[Path]:
    """`path` as stem.part00, stem.part01, ... of at most PART_BYTES each."""
    data, parts = path.read_bytes(), []
    for i in range(0, len(data), PART_BYTES):
        parts.append(out_dir / f"{stem}.part{i // PART_BYTES:02d}")
        parts[-1].write_bytes(data[i : i + PART_BYTES])
    return parts


def join_files(parts_dir: Path, stem: str, target: Path) -> None:
    parts = sorted(parts_dir.glob(f"{stem}.part*"))
    if not parts:
        raise SystemExit(f"--resume: no {stem}.part* files in {parts_dir}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"".join(p.read_bytes() for p in parts))


class PrintProgress:
    """Plain log lines (the device returns stdout; no terminal for Rich)."""

    def __init__(self, name: str, every: int = 100) -> None:
        self.name, self.every, self.n, self.t0 = name, every, 0, time.time()

    def start_epoch(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        print(f"[{self.name}] epoch {epoch + 1}: {steps} steps, from {done}", flush=True)

    def step(self, loss: float, lr: float) -> None:
        self.n += 1
        if self.n % self.every == 0:
            t = time.time() - self.t0
            print(f"[{self.name}] step {self.n} loss {loss:.4f} lr {lr:.2e} {t:.0f} s", flush=True)

    def end_epoch(self, record: dict) -> None:
        print(f"[{self.name}] {json.dumps(record)}", flush=True)

    def message(self, text: str) -> None:
        print(f"[{self.name}] {text}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--variant", default="xs")
    ap.add_argument("--data", default="/tmp/h36m")
    ap.add_argument("--two-d", default="gt")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--lr-schedule", default="exp")
    ap.add_argument("--lr-decay", type=float, default=0.99)
    ap.add_argument("--warmup-steps", type=int, default=300)
    ap.add_argument("--velocity-warmup-steps", type=int, default=0)
    ap.add_argument("--layer-scale-init", type=float, default=0.0)
    ap.add_argument("--frame-stride", type=int, default=2)
    ap.add_argument("--window-stride", type=int, default=9)
    ap.add_argument("--budget-min", type=float, required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument(
        "--init-from", default="", help="start from these weights (e.g. the shipped XS)"
    )
    ap.add_argument("--resume", action="store_true", help="join .devcarry/resume/NAME parts first")
    args = ap.parse_args()

    import torch

    from hgmamba_core.train import TrainConfig, train

    torch.backends.cuda.matmul.allow_tf32 = True  # float32 weights, TF32 matmuls
    out, run = Path(os.environ.get("OUT", "/tmp/out")), Path("/tmp/runs") / args.name
    out.mkdir(parents=True, exist_ok=True)
    if args.resume:
        join_files(Path(".devcarry/resume") / args.name, f"{args.name}_last.pt", run / "last.pt")
    cfg = TrainConfig(
        out=str(run), data=args.data, variant=args.variant, two_d=args.two_d, epochs=1000,
        batch_size=args.batch_size, lr=args.lr, lr_schedule=args.lr_schedule,
        lr_decay=args.lr_decay, warmup_steps=args.warmup_steps,
        velocity_warmup_steps=args.velocity_warmup_steps,
        layer_scale_init=args.layer_scale_init, time_budget_min=args.budget_min,
        frame_stride=args.frame_stride, window_stride=args.window_stride, eval_every=1,
        init_from=args.init_from,
        eval_tile_every=10, checkpoint_every=100000, device=args.device,
    )  # fmt: skip
    res = train(cfg, resume=args.resume, progress=PrintProgress(args.name))
    print(f"[{args.name}] stopped at step {res.global_step}, {res.epochs_done} epochs", flush=True)
    split_file(run / "last.pt", out, f"{args.name}_last.pt")
    shutil.copyfile(run / "final.pt", out / f"{args.name}_final.pt")  # model-only, from train()


if __name__ == "__main__":
    main()
