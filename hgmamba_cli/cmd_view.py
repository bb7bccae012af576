"""`hgmamba view`: rebuild a result's pose3d.html (offline 3D viewer) and open it."""

from __future__ import annotations

from pathlib import Path

import typer


def view(
    result_dir: Path = typer.Argument(
        ..., help="A 'hgmamba lift' output folder (pose3d.npy, pose3d.json)."
    ),
    open_page: bool = typer.Option(
        True, "--open/--no-open", help="Open the page in the default browser."
    ),
) -> None:
    """Write RESULT_DIR/pose3d.html from the saved 3D poses and open it (works offline)."""
    from rich.console import Console

    from hgmamba_core.viewer import rebuild_viewer

    path = rebuild_viewer(result_dir)
    console = Console()
    console.print(f"wrote [bold]{path}[/]")
    if open_page:
        import webbrowser

        if not webbrowser.open(path.resolve().as_uri()):
            console.print("no browser found here: open the file above in any browser")
