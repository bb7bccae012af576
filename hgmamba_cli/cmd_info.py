"""`hgmamba info`: the lifter variants' size, cost, speed on this machine and shipped weights."""

from __future__ import annotations

import json
import math

import typer
from rich.console import Console
from rich.table import Table

from hgmamba_core.errors import HGMambaError


def info(
    variant: str = typer.Option("all", "--variant", help="xs|s|b|all."),
    as_json: bool = typer.Option(
        False,
        "--json",
        help='Print one JSON object {"xs": {"params", "macs", "T", "N", "D"}, ...}.',
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
    table = Table(title="HGMamba lifter variants (MACs for one T-frame clip)")
    cols = ("variant", "N", "D", "T", "params (paper)", "MACs (paper)", "frames/s", "weights")
    for col in cols:
        table.add_column(col, justify="left" if col in ("variant", "weights") else "right")
    missing = []
    for i in infos:
        pp = "" if math.isnan(i.paper_params) else f" ({i.paper_params / 1e6:.1f} M)"
        pm = "" if math.isnan(i.paper_macs) else f" ({i.paper_macs / 1e9:.2f} G)"
        table.add_row(
            f"HGMamba-{i.name.upper()}",
            str(i.depth),
            str(i.dim),
            str(i.frames),
            f"{i.params / 1e6:.2f} M{pp}",
            f"{i.macs / 1e9:.2f} G{pm}",
            f"{i.fps:.0f}" if i.fps is not None else "-",
            "shipped" if i.weights else "[yellow]missing[/]",
        )
        if i.weights is None:
            missing.append(i.name)
    console.print(table)
    if measure:
        console.print(
            f"frames/s: eval mode, batches of ~432 frames of full windows on {dev}, scan backend"
            f" '{infos[0].scan_backend}', {seconds:g} s each (shared machines vary)."
        )
    console.print("MACs include the selective scan, counted analytically (9 FLOPs per state step).")
    for name in missing:
        console.print(
            f"No trained HGMamba-{name.upper()} weights ship here: train them with "
            f"[bold]hgmamba train --data ../shared/data/h36m --out runs/{name} --variant {name}[/]"
            f" and copy runs/{name}/best.pt to assets/weights/hgmamba_{name}_h36m.pt."
        )
