"""`hgmamba render`: re-render saved results as a side-by-side video or a figure."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

# == hgmamba_core.render.DEFAULT_VIEW (checked in the tests); that module imports cv2/matplotlib,
# so it is imported only when the command runs.
DEFAULT_VIEW = (-78.0, 14.0)
# == hgmamba_core.render.RENDER_BACKENDS (checked in the tests); the first is the default.
RENDER_BACKENDS = ("opencv", "matplotlib")
BACKEND_HELP = "3D panel drawn by opencv (default, fast) or matplotlib (the same view, slower)."


def check_render_backend(name: str) -> str:
    """A one-line error before any work for an unknown --render-backend."""
    from hgmamba_core.errors import HGMambaError

    if name not in RENDER_BACKENDS:
        raise HGMambaError(f"--render-backend must be {' or '.join(RENDER_BACKENDS)}, got {name!r}")
    return name


def render(
    result_dir: Path = typer.Argument(
        ..., help="A 'hgmamba lift' output folder (pose2d.npz, pose3d.npy, pose3d.json)."
    ),
    video: Path | None = typer.Option(
        None, "--video", help="The input video, drawn under the 2D skeleton (else a blank canvas)."
    ),
    view: str = typer.Option(
        f"{DEFAULT_VIEW[0]:g},{DEFAULT_VIEW[1]:g}",
        "--view",
        help="3D view AZIM,ELEV in degrees (default: from behind the camera).",
    ),
    frames: str | None = typer.Option(None, "--frames", help="Frame range A:B (B excluded)."),
    trail: float = typer.Option(
        0.0, "--trail", help="Seconds of each person's path drawn on the floor (0: none)."
    ),
    fps: float | None = typer.Option(
        None, "--fps", help="Output frame rate (default: the clip's)."
    ),
    png: bool = typer.Option(False, "--png", help="Write a figure (input | 2D | 3D rows) instead."),
    gt: Path | None = typer.Option(
        None,
        "--gt",
        help="'hgmamba eval --save-predictions' npz: prediction vs ground truth in 3D.",
    ),
    render_backend: str = typer.Option(RENDER_BACKENDS[0], "--render-backend", help=BACKEND_HELP),
) -> None:
    """Re-render saved results without re-running detection or the lifter."""
    from rich.console import Console

    from hgmamba_core.render import parse_frames, parse_view
    from hgmamba_core.render.result import render_result

    check_render_backend(render_backend)
    path = render_result(
        result_dir, video=video, view=parse_view(view),
        frames=parse_frames(frames) if frames else None, fps=fps, png=png, gt_file=gt,
        progress=sys.stderr.isatty(), trail_s=trail, backend=render_backend,
    )  # fmt: skip
    Console().print(f"wrote [bold]{path}[/]")
