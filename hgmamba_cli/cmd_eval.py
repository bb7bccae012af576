"""`hgmamba eval`: evaluate a checkpoint on Human3.6M or MPI-INF-3DHP and print a Rich table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hgmamba_core.errors import HGMambaError
from hgmamba_core.fileio import write_text_atomic


def _list(s: str | None) -> list[str] | None:
    items = [x.strip() for x in s.split(",") if x.strip()] if s else []
    return items or None


def evaluate(
    data: Annotated[Path, typer.Option(help="Data folder (h36m) or folder/file (3dhp).")],
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="Lifter checkpoint (.pt); default: the shipped benchmark file"
            " assets/weights/hgmamba_xs_h36m.pt (with --two-d sh: hgmamba_xs_h36m_sh.pt, the"
            " file fine-tuned on SH 2D, where it ships)."
        ),
    ] = None,
    dataset: Annotated[str, typer.Option(help="h36m or 3dhp.")] = "h36m",
    two_d: Annotated[
        str, typer.Option("--two-d", help="2D source: gt, sh (ours) or a VideoPose3D 2D name.")
    ] = "gt",
    subjects: Annotated[
        str, typer.Option(help="Comma list: S9,S11 (h36m) or TS1,...,TS6 (3dhp).")
    ] = "",
    actions: Annotated[str, typer.Option(help="Comma list; 'Walking' matches its takes.")] = "",
    no_flip: Annotated[
        bool, typer.Option("--no-flip", help="No flip test-time augmentation.")
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the metrics as JSON.")
    ] = None,
    save_predictions_to: Annotated[
        Path | None,
        typer.Option("--save-predictions", help="npz with pred, gt (frames, 17, 3) mm + names."),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Windows per forward pass.")] = 64,
    every: Annotated[
        int, typer.Option(help="Score every k-th test window only (quick check; 1 = all frames).")
    ] = 1,
) -> None:
    """Evaluate a lifter: per-action P1/P2 (h36m) or per-sequence PCK/AUC/MPJPE (3dhp)."""
    dataset = dataset.lower()
    if dataset not in ("h36m", "3dhp"):
        raise HGMambaError(f"unknown dataset '{dataset}': use h36m or 3dhp")
    if batch_size < 1:
        raise HGMambaError("--batch-size must be >= 1")
    if checkpoint is None:
        from hgmamba_core.pipeline import eval_checkpoint

        checkpoint = eval_checkpoint(dataset, two_d.lower())
        if checkpoint is None:
            raise HGMambaError("no --checkpoint given and no shipped hgmamba_xs_h36m.pt")
    if not checkpoint.is_file():
        raise HGMambaError(f"checkpoint not found: {checkpoint}")
    from hgmamba_core.evaluate import evaluate_checkpoint, save_predictions  # torch: only now

    run = evaluate_checkpoint(
        dataset, data, checkpoint, two_d, _list(subjects), _list(actions),
        flip=not no_flip, device=device, batch_size=batch_size, every=every,
    )  # fmt: skip
    rep = run.report
    h36m = dataset == "h36m"
    table = Table(
        title=f"HGMamba-{rep.meta['variant']} on {'Human3.6M' if h36m else 'MPI-INF-3DHP'}"
        f" ({rep.meta['two_d']} 2D, flip {'on' if rep.flip else 'off'}"
        + (f", 1 window in {every}" if every > 1 else "")
        + f")\ncheckpoint {checkpoint}"
    )
    table.add_column("action" if h36m else "sequence")
    cols = ["mpjpe_mm", "p_mpjpe_mm"] if h36m else ["pck150", "auc", "mpjpe_mm"]
    heads = {"mpjpe_mm": "P1 mm", "p_mpjpe_mm": "P2 mm", "pck150": "PCK@150", "auc": "AUC"}
    for c in cols:
        table.add_column(heads[c], justify="right")
    table.add_column("frames", justify="right")
    for name, row in rep.rows.items():
        table.add_row(name, *[f"{row[c]:.2f}" for c in cols], str(row["frames"]))
    table.add_section()
    table.add_row(
        "average" + (" (of actions)" if h36m else " (all frames)"),
        *[f"{rep.average[c]:.2f}" for c in cols], str(rep.frames), style="bold",
    )  # fmt: skip
    Console().print(table)
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(rep.to_json(), indent=2) + "\n")
    if save_predictions_to is not None:
        save_predictions(save_predictions_to, run.store, run.pred, run.predicted)
