"""`hgmamba lift`: video (or keypoint file) -> 3D trajectories, exports and a side-by-side video."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from hgmamba_cli import cmd_render

if TYPE_CHECKING:  # the pipeline pulls in numpy/torch: imported only when `lift` runs
    from hgmamba_core.pipeline import LiftReport

DEFAULT_OUT = Path("results")  # == hgmamba_core.pipeline.DEFAULT_OUT (checked in the tests)


def lift(
    video: Path | None = typer.Argument(
        None,
        help="Input video, image, or folder of numbered images. "
        "Default: the shipped demo clip assets/demo/vtest_10s.mp4.",
    ),
    keypoints: Path | None = typer.Option(
        None, "--keypoints", help="Precomputed 2D (npz/json) instead of running the detector."
    ),
    layout: str | None = typer.Option(None, "--layout", help="Keypoint file layout: coco|h36m."),
    variant: str | None = typer.Option(
        None, "--variant", help="Lifter variant xs|s|b (default: the checkpoint's, else xs)."
    ),
    checkpoint: Path | None = typer.Option(
        None,
        "--checkpoint",
        help="Lifter checkpoint (default: assets/weights/hgmamba_<variant>_wild.pt if shipped,"
        " else hgmamba_<variant>_h36m.pt).",
    ),
    out: Path = typer.Option(DEFAULT_OUT, "--out", help="Results go to OUT/<video stem>/."),
    person: str | None = typer.Option(
        None,
        "--person",
        help="main|largest|longest|all|<track id> (default: all for the demo clip, else main).",
    ),
    device: str = typer.Option("auto", "--device", help="auto|cpu|cuda."),
    smooth: bool = typer.Option(False, "--smooth", help="One-Euro smoothing of the 2D tracks."),
    no_render: bool = typer.Option(False, "--no-render", help="Skip the side-by-side video."),
    export: str = typer.Option(
        ",".join(("npy", "json", "csv", "bvh", "html")),
        "--export",
        help="Formats, comma-separated (html: pose3d.html, an offline 3D viewer).",
    ),
    detector_weights: Path | None = typer.Option(
        None, "--detector-weights", help="YOLO-Pose weights (default: the shipped yolo11n-pose)."
    ),
    detector_imgsz: int | None = typer.Option(
        None,
        "--detector-imgsz",
        help="Detector input size (default: 640, 960 or 1280, chosen from the people's height "
        "in a few frames; 1280 for the demo clip; 320 is ~3x faster on a CPU).",
    ),
    detector_backend: str = typer.Option(
        "auto",
        "--detector-backend",
        help="auto|torch|onnx|openvino (auto: OpenVINO on a CPU, else ONNX Runtime if installed).",
    ),
    refine_crops: bool = typer.Option(
        False,
        "--refine-crops",
        help="Pose again on upscaled crops of the tracked people (small people, modest imgsz).",
    ),
    detector_mode: str | None = typer.Option(
        None,
        "--detector-mode",
        help="full|track: every frame whole, or whole frames every ~1 s with crops of the "
        "tracked people between (default: track; full for the demo clip and --refine-crops).",
    ),
    conf: float = typer.Option(0.25, "--conf", help="Detector person confidence threshold."),
    max_gap: int | None = typer.Option(
        None, "--max-gap", help="Interpolate gaps up to N frames (default about 0.5 s)."
    ),
    fps: float | None = typer.Option(
        None, "--fps", help="Frame rate of an image folder (default 30); overrides a video's."
    ),
    rotate: int = typer.Option(
        0,
        "--rotate",
        help="Turn every frame 0, 90, 180 or 270 degrees clockwise first (a video that plays "
        "sideways because its rotation tag was lost); the file's own tag is always applied.",
    ),
    batch_size: int = typer.Option(64, "--batch-size", help="Lifter windows per batch."),
    no_flip: bool = typer.Option(False, "--no-flip", help="Disable flip test-time augmentation."),
    tilt: str = typer.Option(
        "auto",
        "--tilt",
        help="Camera pitch: auto (from the floor under the people's feet and their bodies' "
        "up direction) or degrees looking down.",
    ),
    camera_height: float | None = typer.Option(
        None, "--camera-height", help="Known camera height above the floor, metres (sets scale)."
    ),
    view: str | None = typer.Option(
        None, "--view", help="3D panel view AZIM,ELEV in degrees (default: from behind the camera)."
    ),
    trail: float = typer.Option(
        0.0, "--trail", help="Seconds of each person's path drawn on the floor (0: none)."
    ),
    render_backend: str = typer.Option(
        cmd_render.RENDER_BACKENDS[0], "--render-backend", help=cmd_render.BACKEND_HELP
    ),
    focal: float | None = typer.Option(
        None,
        "--focal",
        help="Focal length in pixels (default: the video's 35 mm-equivalent tag, else max(w, h)).",
    ),
) -> None:
    """Lift the people in a video to 3D (metres, z-up world) and write npy/json/csv/bvh + mp4."""
    from hgmamba_core.errors import HGMambaError
    from hgmamba_core.pipeline import LiftOptions, parse_exports, run_lift
    from hgmamba_core.world import WorldConfig, parse_tilt

    try:
        tilt_value = parse_tilt(tilt)
    except ValueError:
        raise HGMambaError(f"--tilt must be 'auto' or degrees looking down, got {tilt!r}") from None
    for name, v in (("--camera-height", camera_height), ("--focal", focal)):
        if v is not None and not v > 0:
            raise HGMambaError(f"{name} must be positive, got {v}")
    cmd_render.check_render_backend(render_backend)
    world = WorldConfig(tilt_deg=tilt_value, camera_height_m=camera_height, focal_px=focal)
    view_angles = None
    if view is not None:
        from hgmamba_core.render import parse_view

        view_angles = parse_view(view)
    opts = LiftOptions(
        video=video, keypoints=keypoints, layout=layout, variant=variant, checkpoint=checkpoint,
        out=out, person=person, device=device, smooth=smooth, render=not no_render,
        exports=parse_exports(export), detector_weights=detector_weights,
        detector_imgsz=detector_imgsz, detector_backend=detector_backend,
        refine_crops=refine_crops, detector_mode=detector_mode, conf=conf, max_gap=max_gap, fps=fps, rotate=rotate, batch_size=batch_size,
        flip=not no_flip, world=world, view=view_angles, trail_s=trail, progress=sys.stderr.isatty(),
        render_backend=render_backend,
    )  # fmt: skip
    print_summary(run_lift(opts))


def print_summary(rep: LiftReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    ids = ", ".join(str(i) for i in rep.track_ids)
    console.print(
        f"[bold]{rep.frames}[/] frames, [bold]{rep.persons}[/] person(s) (track ids {ids}), "
        f"HGMamba-{rep.variant} on {rep.device} (weights {Path(rep.checkpoint).name})"
    )
    table = Table(title=None, show_edge=False)
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("frames/s", justify="right")
    total = 0.0
    for name, st in rep.stages.items():
        total += st.seconds
        table.add_row(name, f"{st.seconds:.2f}", f"{st.fps:.1f}" if st.frames else "-")
    table.add_row("total", f"{total:.2f}", f"{rep.frames / total:.1f}" if total > 0 else "-")
    console.print(table)
    for note in rep.notes:
        console.print(f"[yellow]note:[/] {note}")
    for p in rep.paths:
        console.print(f"  wrote {p}")
