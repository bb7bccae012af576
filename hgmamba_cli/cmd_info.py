"""`hgmamba info`: the lifter variants' size, cost, speed on this machine and shipped weights."""

from __future__ import annotations

import json
import math

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from hgmamba_core.errors import HGMambaError

SCAN_NOTE = (
    "Scan MACs (the selective scan, 9 FLOPs per state step, halved) are shown beside the matmul "
    "MACs, not added in: Table I's profilers count only matmuls and cannot see inside the scan."
)


def _vs_paper(ours: float, paper: float) -> str:
    """'+9%': how far ours is from the paper's Table I value ('-' when not in the paper)."""
    return "-" if math.isnan(paper) else f"{100 * (ours / paper - 1):+.0f}%"


def info(
    variant: str = typer.Option("all", "--variant", help="xs|s|b|all."),
    as_json: bool = typer.Option(
        False,
        "--json",
        help='Print one JSON object {"xs": {"params", "macs", "scan_macs", "T", "N", "D"}, ...}'
        " (macs: matmul MACs, as Table I).",
    ),
    fps: bool | None = typer.Option(
        None, "--fps/--no-fps", help="Measure frames/s here (default: on, off with --json)."
    ),
    seconds: float = typer.Option(2.0, "--seconds", help="Length of each speed measurement."),
    device: str = typer.Option("cpu", "--device", help="Device for the speed measurement."),
) -> None:
    """Show N, D, T, parameters, MACs, measured frames/s and shipped weights per variant."""
    from hgmamba_core.device import resolve_device
    from hgmamba_core.model.info import variant_info
    from hgmamba_core.model.variants import PUBLIC_VARIANTS

    names = PUBLIC_VARIANTS if variant.lower() == "all" else (variant.lower(),)
    if names[0] not in PUBLIC_VARIANTS and names[0] != "tiny":
        raise HGMambaError(f"unknown --variant '{variant}': use xs, s, b or all")
    measure = (not as_json) if fps is None else fps
    dev = str(resolve_device(device))
    infos = [variant_info(n, fps=measure, seconds=seconds, device=dev) for n in names]
    if as_json:
        print(json.dumps({i.name: i.to_json() for i in infos}))
        return
    console = Console()
    title = "HGMamba variants: one T-frame clip; GMACs = matmuls (as Table I)"
    table = Table(
        box=box.SIMPLE_HEAD, title=title, pad_edge=False, padding=(0, 1), collapse_padding=True
    )
    cols = ["", "N", "D", "T", "Mparams", "±paper", "GMACs", "±paper", "scan GMACs"]
    cols += ["fps"] * measure + ["weights"]
    rows = []
    for i in infos:
        row = [i.name.upper(), str(i.depth), str(i.dim), str(i.frames), f"{i.params / 1e6:.2f}",
               _vs_paper(i.params, i.paper_params), f"{i.macs / 1e9:.2f}",
               _vs_paper(i.macs, i.paper_macs), f"{i.scan_macs / 1e9:.2f}"]  # fmt: skip
        row += [f"{i.fps:.0f}" if i.fps is not None else "-"] * measure
        rows.append(row + ["shipped" if i.weights else "missing"])
    for col in cols:
        just = "left" if col in ("", "weights") else "right"
        table.add_column(col, justify=just, no_wrap=True)
    missing = []
    for i, row in zip(infos, rows, strict=True):
        table.add_row(*row)
        if i.weights is None:
            missing.append(i.name)
    console.print(table)
    paper = [i for i in infos if not math.isnan(i.paper_macs)]
    if paper:
        console.print("Paper Table I: " + ", ".join(
            f"{i.name.upper()} {i.paper_params / 1e6:.1f} M params, {i.paper_macs / 1e9:.2f} GMACs"
            for i in paper) + ".")  # fmt: skip
    if measure:
        console.print(
            f"frames/s: eval mode, batches of ~432 frames of full windows on {dev}, scan backend"
            f" '{infos[0].scan_backend}', {seconds:g} s each (shared machines vary)."
        )
    console.print(SCAN_NOTE)
    for name in missing:
        console.print(
            f"No trained HGMamba-{name.upper()} weights ship here: train them with "
            f"[bold]hgmamba train --data ../shared/data/h36m --out runs/{name} --variant {name}[/]"
            f" and copy runs/{name}/best.pt to assets/weights/hgmamba_{name}_h36m.pt."
        )
