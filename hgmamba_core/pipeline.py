"""`hgmamba lift` end to end: video or keypoint file -> 2D -> lifter -> world -> files.

Checks everything cheap first (inputs, variant, checkpoint, output folder) so a bad call fails
in a second with one line. All outputs are written into a hidden staging folder inside the
output folder and moved into place only when every file is complete; on any error or Ctrl-C
the staging folder is removed, so no partial output is ever left.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hgmamba_core.assets import ASSETS_ENV, assets_dirs  # noqa: F401 (ASSETS_ENV re-exported)
from hgmamba_core.errors import HGMambaError
from hgmamba_core.poses import Pose2DSequence, Pose3DSequence, normalize_screen
from hgmamba_core.world import WorldConfig, place_in_world
from hgmamba_core.world.focal import resolve_focal

if TYPE_CHECKING:  # torch is imported only when a lifter is loaded
    from hgmamba_core.lift import Lifter

EXPORT_FORMATS = ("npy", "json", "csv", "bvh", "html")
DEFAULT_OUT = Path("results")
DEMO_CLIP = Path("demo") / "vtest_10s.mp4"
DEFAULT_DETECTOR_IMGSZ = 640
# The demo clip's people are ~80 px tall in 768x576 frames: at 640 YOLO11n-pose finds them in
# few frames (longest track 8 of 100); at 960 many of them score 0.05-0.3, at 1280 0.4-0.9:
# 1280 lifts every person whose body is mostly in view on the frames counted by eye
# (bench/people.py: 5.05 people per frame against 4.01 at 960, the detector ~1.5x slower).
DEMO_DETECTOR_IMGSZ = 1280
DEMO_DETECTOR_MODE = "full"  # the demo's crowd: README Speed, "tracking by crop"


def find_asset(rel: Path | str) -> Path | None:
    return find_first_asset([rel])


def find_first_asset(rels: list[Path | str]) -> Path | None:
    """Per assets folder in order, the first of `rels` it holds (so a $HGMAMBA_ASSETS folder's
    own files win over the checkout's preferred ones)."""
    for d in assets_dirs():
        for rel in rels:
            if (d / rel).is_file():
                return (d / rel).resolve()
    return None


def default_checkpoint_name(variant: str) -> str:
    """The benchmark file (H36M studio cameras): what `hgmamba eval` defaults to."""
    return f"hgmamba_{variant}_h36m.pt"


def sh_checkpoint_name(variant: str) -> str:
    """The benchmark file fine-tuned on Stacked Hourglass 2D: `eval --two-d sh` prefers it when
    shipped (the paper, too, trains one set of weights per 2D source)."""
    return f"hgmamba_{variant}_h36m_sh.pt"


def eval_checkpoint(dataset: str, two_d: str, variant: str = "xs") -> Path | None:
    """The shipped file `hgmamba eval` uses without --checkpoint: on Human3.6M with SH 2D the SH
    file where it ships, else the benchmark file; None when neither is there."""
    names = [default_checkpoint_name(variant)]
    if dataset == "h36m" and two_d == "sh":
        names.insert(0, sh_checkpoint_name(variant))
    return find_first_asset([Path("weights") / name for name in names])


def wild_checkpoint_name(variant: str) -> str:
    """The wild-recipe file (virtual cameras, detector-like 2D): `lift` prefers it when shipped."""
    return f"hgmamba_{variant}_wild.pt"


@dataclass
class LiftOptions:
    """Everything `hgmamba lift` can be asked to do (CLI flags map 1:1)."""

    video: Path | None = None
    keypoints: Path | None = None
    layout: str | None = None
    variant: str | None = None  # None: the checkpoint's variant, else "xs"
    checkpoint: Path | None = None
    out: Path = DEFAULT_OUT
    person: str | None = None  # None: "all" for the demo clip, "main" otherwise
    device: str = "auto"
    smooth: bool = False
    render: bool = True
    exports: tuple[str, ...] = EXPORT_FORMATS
    detector_weights: Path | None = None
    detector_imgsz: int | None = None  # None: 640, or DEMO_DETECTOR_IMGSZ for the demo clip
    detector_backend: str = "auto"  # auto|torch|onnx|openvino (detectors/backends.py)
    refine_crops: bool = False  # pose again on upscaled crops of the tracked people
    detector_mode: str | None = None  # full|track; None: see detector_mode() below
    conf: float = 0.25
    max_gap: int | None = None  # None: about half a second
    fps: float | None = None  # None: the source's (mean) rate; 30 for image folders
    rotate: int = 0  # degrees clockwise, after the file's own rotation tag
    batch_size: int = 64
    flip: bool = True
    progress: bool = True  # Rich progress bars on stderr
    world: WorldConfig = field(default_factory=WorldConfig)
    view: tuple[float, float] | None = None  # 3D panel (azimuth, elevation); None: render's
    trail_s: float = 0.0  # seconds of path drawn under each person in the 3D panel
    render_backend: str = "opencv"  # 3D panel: opencv | matplotlib (render.make_panel)


@dataclass
class StageTime:
    seconds: float = 0.0
    frames: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class LiftReport:
    """What a lift run produced, for the CLI's summary."""

    out_dir: Path
    frames: int
    persons: int
    track_ids: list[int]
    variant: str
    checkpoint: str
    device: str
    stages: dict[str, StageTime]
    paths: list[Path]
    notes: list[str] = field(default_factory=list)


def parse_exports(spec: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """'npy,json' -> ('npy', 'json'); unknown names are a one-line error."""
    if spec is None:
        return EXPORT_FORMATS
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = tuple(dict.fromkeys(s.strip().lower() for s in items if s.strip()))
    bad = [s for s in out if s not in EXPORT_FORMATS]
    if bad:
        raise HGMambaError(
            f"unknown export format '{bad[0]}': choose from {','.join(EXPORT_FORMATS)}"
        )
    return out


# ----------------------------------------------------------------------------- checks


def _resolve_inputs(opts: LiftOptions) -> tuple[Path | None, Path | None, str]:
    """(video, keypoints, stem); with neither given, the shipped demo clip."""
    video, kp = opts.video, opts.keypoints
    if video is None and kp is None:
        video = find_asset(DEMO_CLIP)
        if video is None:
            raise HGMambaError(
                f"no VIDEO given and the demo clip assets/{DEMO_CLIP} is missing: "
                "pass a video path or set HGMAMBA_ASSETS"
            )
    for p, what in ((video, "video"), (kp, "keypoint file")):
        if p is None:
            continue
        if not p.exists():
            raise HGMambaError(f"{what} not found: {p}")
        if p.is_dir() and what != "video":  # a video may be a folder of numbered images
            raise HGMambaError(f"expected a {what}, got a folder: {p}")
        if p.is_file() and p.stat().st_size == 0:
            raise HGMambaError(f"{what} is empty (0 bytes): {p}")
    src = video or kp
    stem = src.resolve().name if src.is_dir() else src.stem  # type: ignore[union-attr]
    return video, kp, stem


def detector_imgsz(opts: LiftOptions) -> int:
    """--detector-imgsz if given; else DEMO_DETECTOR_IMGSZ for the demo run, 640 otherwise
    (where a video's look at its people may still raise it: _choose_detector_size)."""
    if opts.detector_imgsz is not None:
        return int(opts.detector_imgsz)
    demo = opts.video is None and opts.keypoints is None
    return DEMO_DETECTOR_IMGSZ if demo else DEFAULT_DETECTOR_IMGSZ


def detector_mode(opts: LiftOptions) -> str:
    """--detector-mode if given; else whole frames with --refine-crops, DEMO_DETECTOR_MODE for
    the demo run (a crowd of small people, README Speed), tracking by crop (detectors/roi.py)
    otherwise."""
    from detectors.roi import check_detector_mode

    if opts.detector_mode is not None:
        mode = check_detector_mode(opts.detector_mode)
        if mode == "track" and opts.refine_crops:
            raise HGMambaError(
                "--refine-crops needs --detector-mode full (track mode crops already)"
            )
        return mode
    demo = opts.video is None and opts.keypoints is None
    if opts.refine_crops:
        return "full"
    return DEMO_DETECTOR_MODE if demo else "track"


def person_choice(opts: LiftOptions) -> str:
    """--person if given; else every person for the demo run (a crowd), the main one otherwise."""
    if opts.person is not None:
        return opts.person
    return "all" if opts.video is None and opts.keypoints is None else "main"


def _prepare_out_dir(path: Path) -> bool:
    """Create the folder if needed and prove we can write there; True if we created it."""
    created = not path.exists()
    try:
        if path.exists() and not path.is_dir():
            raise HGMambaError(f"output path exists and is not a folder: {path}")
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise HGMambaError(f"cannot write to output folder {path}: {e.strerror or e}") from None
    return created


def default_h36m_dir() -> Path | None:
    """The Human3.6M folder beside the checkout (../shared/data/h36m), if it is there."""
    d = Path(__file__).resolve().parents[2] / "shared" / "data" / "h36m"
    return d if d.is_dir() else None


def train_command(variant: str) -> tuple[str, Path]:
    """(the `hgmamba train` command that trains `variant` on Human3.6M, its best.pt path)."""
    data = default_h36m_dir()
    run = Path("runs") / f"hgmamba_{variant}_h36m"
    cmd = (
        f"hgmamba train --data {shlex.quote(str(data)) if data else 'H36M_DIR'} "
        f"--dataset h36m --variant {variant} --out {run}"
    )
    return cmd, run / "best.pt"


def resolve_checkpoint(variant: str | None, checkpoint: Path | None) -> tuple[str, Path]:
    """(variant, checkpoint path); the default is assets/weights/hgmamba_<variant>_wild.pt when
    it ships (trained for real videos), else assets/weights/hgmamba_<variant>_h36m.pt.

    A missing default is a one-line error naming the variant and the exact training command.
    """
    from hgmamba_core.model import get_variant

    name = get_variant(variant or "xs").name  # unknown variant -> one-line error
    if checkpoint is not None:
        if not checkpoint.is_file():
            raise HGMambaError(f"checkpoint not found: {checkpoint}")
        return name, checkpoint
    weights = Path("weights") / default_checkpoint_name(name)
    # per assets folder: its wild file first, then its benchmark file
    shipped = find_first_asset([Path("weights") / wild_checkpoint_name(name), weights])
    if shipped is None:
        cmd, best = train_command(name)
        where = (
            ""
            if default_h36m_dir()
            else (" (H36M_DIR: a Human3.6M folder with h36m_3d_17j.npz or VideoPose3D's files)")
        )
        raise HGMambaError(
            f"no trained weights ship for HGMamba-{name} yet (assets/{weights} is missing): "
            f"train them with `{cmd}`{where}, then pass --checkpoint {best} "
            f"or copy it to assets/{weights}"
        )
    return name, shipped


def load_lifter(opts: LiftOptions) -> Lifter:
    """The checkpoint as a Lifter on the chosen device, checked against --variant."""
    import hgmamba_core
    from hgmamba_core.device import resolve_device
    from hgmamba_core.lift import Lifter

    variant, ckpt = resolve_checkpoint(opts.variant, opts.checkpoint)
    device = resolve_device(opts.device)
    try:
        with warnings.catch_warnings():  # torch warns about junk bytes before failing on them
            warnings.simplefilter("ignore", UserWarning)
            model = hgmamba_core.load_lifter(ckpt, device=device)
    except (IndexError, KeyError, AttributeError, UnicodeDecodeError) as e:
        # Random bytes can make torch's unpickler fail in these ways too (not only with
        # UnpicklingError/RuntimeError, which the loader reports itself).
        raise HGMambaError(
            f"cannot read checkpoint {ckpt}: not a file written by 'hgmamba train' "
            f"({type(e).__name__}: {e})"
        ) from None
    from hgmamba_core.ssm.when_ready import scan_without_waiting

    scan_without_waiting(model, device)  # a first run never waits for a compiler
    cfg = model.cfg
    if opts.variant is not None and cfg.name != variant:
        raise HGMambaError(
            f"checkpoint {ckpt} holds HGMamba-{cfg.name} (T={cfg.frames}), "
            f"but --variant {variant} was asked for: drop --variant or pass a {variant} checkpoint"
        )
    if opts.batch_size < 1:
        raise HGMambaError(f"--batch-size must be at least 1, got {opts.batch_size}")
    return Lifter(
        model, T=cfg.frames, variant=cfg.name, checkpoint=str(ckpt),
        batch_size=opts.batch_size, flip=opts.flip,
    )  # fmt: skip


# ----------------------------------------------------------------------------- stages


def lift_pose2d(
    lifter: Lifter,
    pose2d: Pose2DSequence,
    world: WorldConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
    input_info: dict | None = None,
) -> Pose3DSequence:
    """Lift every person of a 2D result and move them into the world frame."""
    xy = normalize_screen(pose2d.keypoints, *pose2d.size)
    conf = np.nan_to_num(pose2d.scores, nan=0.0)[..., None]
    tracks = [np.concatenate([xy[:, p], conf[:, p]], axis=-1) for p in range(pose2d.num_persons)]
    rel = lifter.lift_tracks(tracks, progress=progress)
    rel_cam = np.stack(rel, axis=1) if rel else np.zeros((pose2d.num_frames, 0, 17, 3))
    placed = place_in_world(
        rel_cam, pose2d.keypoints, pose2d.scores, pose2d.size, world, fps=pose2d.fps or 25.0
    )
    return Pose3DSequence(
        joints=placed.joints, track_ids=pose2d.track_ids, fps=pose2d.fps,
        variant=lifter.variant, checkpoint=lifter.checkpoint, timestamps=pose2d.timestamps,
        input_info=dict(input_info or {}),
        meta={
            "source": pose2d.source, "image_size": list(pose2d.size), "T": lifter.T,
            "window_stride": lifter.window_stride,
            "flip_tta": lifter.flip, "camera": placed.camera.to_dict(),
            "camera_summary": placed.camera.summary(),
        },
    )  # fmt: skip


@contextlib.contextmanager
def _staging(out_dir: Path, created: bool):
    """A hidden folder beside the outputs; removed on failure (and the out dir if we made it)."""
    stage = Path(tempfile.mkdtemp(prefix=".hgmamba-partial-", dir=out_dir))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):
                out_dir.rmdir()  # only if empty
        raise
    shutil.rmtree(stage, ignore_errors=True)


def _publish(stage: Path, out_dir: Path) -> list[Path]:
    """Move the finished files from the staging folder into the output folder."""
    done = []
    umask = os.umask(0)
    os.umask(umask)
    for f in sorted(stage.iterdir()):
        if f.is_file() and not f.name.startswith("."):
            f.chmod(0o666 & ~umask)  # temp files are created 0600; results are ordinary files
            os.replace(f, out_dir / f.name)
            done.append(out_dir / f.name)
    return done


def checkpoint_notes(meta: dict | None) -> list[str]:
    """What the user must know about the weights: a checkpoint marked preliminary says so."""
    meta = meta or {}
    if meta.get("status") != "preliminary":
        return []
    return [f"preliminary lifter weights: {meta.get('status_note', 'see the README model card')}"]


def run_lift(opts: LiftOptions) -> LiftReport:
    """The whole job: checks, 2D, lift, world frame, exports, render; see the module doc."""
    # FFmpeg's own log lines (e.g. "moov atom not found") would precede our one-line errors.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    from hgmamba_core import export as export_mod

    video, kp_file, stem = _resolve_inputs(opts)
    exports = parse_exports(opts.exports)
    detector_mode(opts)  # a bad --detector-mode fails before any model loads
    from hgmamba_core.video import check_rotate

    check_rotate(opts.rotate)  # so does a bad --rotate
    out_dir = Path(opts.out) / stem
    resolve_checkpoint(opts.variant, opts.checkpoint)  # fail fast, before touching the disk
    created = _prepare_out_dir(out_dir)
    stages: dict[str, StageTime] = {}
    notes: list[str] = []
    with _staging(out_dir, created) as stage:
        lifter = load_lifter(opts)
        notes.extend(checkpoint_notes(getattr(lifter.model, "meta", None)))
        pose2d, pose3d = lift_source(lifter, opts, video, kp_file, stages, notes)

        t0 = time.perf_counter()
        pose2d.save(stage / "pose2d.npz")
        export_mod.export_all(pose3d, stage, exports)
        stages["write"] = StageTime(time.perf_counter() - t0, pose2d.num_frames)
        if opts.render:
            _render(video, pose2d, pose3d, stage / f"{stem}_3d.mp4", stages, opts)
        paths = _publish(stage, out_dir)
    return LiftReport(
        out_dir=out_dir, frames=pose2d.num_frames, persons=pose2d.num_persons,
        track_ids=[int(t) for t in pose2d.track_ids], variant=lifter.variant,
        checkpoint=lifter.checkpoint, device=str(lifter.device), stages=stages, paths=paths,
        notes=notes,
    )  # fmt: skip


def lift_source(
    lifter: Lifter,
    opts: LiftOptions,
    video: Path | None,
    kp_file: Path | None,
    stages: dict[str, StageTime],
    notes: list[str],
) -> tuple[Pose2DSequence, Pose3DSequence]:
    """The stages between an input and its 3D: the 2D front end (detector and tracker, or a
    keypoint file), then the lifter and the world frame. `hgmamba lift` and the Python API
    (hgmamba_core.api) both run exactly this; fills stage timings and the user's notes."""
    pose2d, input_info = _run_front_end(opts, video, kp_file, stages, notes)
    t0 = time.perf_counter()
    pose3d = lift_in_world(lifter, pose2d, opts.world, video, input_info, notes)
    stages["lift"] = StageTime(time.perf_counter() - t0, pose2d.num_frames)
    return pose2d, pose3d


def lift_in_world(
    lifter: Lifter,
    pose2d: Pose2DSequence,
    world: WorldConfig,
    video: Path | None = None,
    input_info: dict | None = None,
    notes: list[str] | None = None,
) -> Pose3DSequence:
    """Lift with the focal length resolved (--focal, else the video's 35 mm tag, else the
    default) and append the camera estimate's summary and notes to `notes`."""
    focal = resolve_focal(pose2d.size, world.focal_px, video)
    world = replace(world, focal_px=focal.px, focal_source=focal.source)
    pose3d = lift_pose2d(lifter, pose2d, world, input_info=input_info)
    if notes is not None:
        notes.append(pose3d.meta["camera_summary"])
        notes.extend(pose3d.meta["camera"]["notes"])
    return pose3d


def _run_front_end(
    opts: LiftOptions,
    video: Path | None,
    kp_file: Path | None,
    stages: dict[str, StageTime],
    notes: list[str],
) -> tuple[Pose2DSequence, dict]:
    """Detector (or keypoint file) -> cleaned 2D of the chosen persons and what the input was
    (frames decoded / in the header, rates); fills stage timings."""
    from detectors import detect_video, load_keypoints

    if kp_file is not None:
        res = load_keypoints(
            kp_file, layout=opts.layout, video=video, person=person_choice(opts),
            max_gap=opts.max_gap, smooth=opts.smooth, fps=opts.fps, rotate=opts.rotate,
        )  # fmt: skip
        stages["read 2D"] = StageTime(res.timing.total_s, res.poses.num_frames)
    else:
        assert video is not None
        imgsz, det = _choose_detector_size(opts, video, stages, notes)
        res = detect_video(
            video, weights=opts.detector_weights, imgsz=imgsz, device=opts.device,
            conf=opts.conf, person=person_choice(opts), max_gap=opts.max_gap, smooth=opts.smooth,
            progress=opts.progress, fps=opts.fps, rotate=opts.rotate,
            backend=opts.detector_backend,
            refine_crops=opts.refine_crops, detector=det, detector_mode=detector_mode(opts),
        )  # fmt: skip
        t = res.timing
        stages["decode"] = StageTime(t.decode_s, t.frames)
        stages["detect"] = StageTime(t.detect_s + t.post_s, t.frames)
    notes.extend(res.notes)
    from detectors.orientation import sideways_note

    turned = sideways_note(res.poses.keypoints, res.poses.scores, opts.rotate)
    if turned:
        notes.append(turned)
    if not res.segments:
        src = kp_file or video
        raise HGMambaError(
            f"no person with enough confident joints to lift in {src}: "
            "try a lower --conf or a larger --detector-imgsz"
        )
    return res.poses, res.input_info


def _choose_detector_size(
    opts: LiftOptions, video: Path, stages: dict[str, StageTime], notes: list[str]
):
    """(imgsz, a loaded detector to reuse or None): --detector-imgsz or the demo's size as
    given; otherwise a look at a few frames (detectors/probe.py) picks 640, 960 or 1280 from
    the people's height, and the 640 detector it used runs the video when 640 is chosen."""
    imgsz = detector_imgsz(opts)
    if opts.detector_imgsz is not None:
        return imgsz, None
    if imgsz != DEFAULT_DETECTOR_IMGSZ:  # the demo clip: its size is known
        notes.append(f"demo clip: detector input size {imgsz} for its small people")
        return imgsz, None
    from detectors.front_end import load_detector
    from detectors.probe import probe_imgsz
    from hgmamba_core.video import VideoReader

    with VideoReader(video, fps=opts.fps, rotate=opts.rotate) as reader:
        size = reader.info.size
    det = load_detector(opts.detector_weights, imgsz, opts.device, opts.conf,
                        opts.detector_backend, frame_size=size)  # fmt: skip
    t0 = time.perf_counter()  # loading is not timed for the video's own detector either
    probe = probe_imgsz(
        video, det, main_only=person_choice(opts) != "all", fps=opts.fps, rotate=opts.rotate
    )
    stages["probe"] = StageTime(time.perf_counter() - t0)  # no frames of the output
    note = probe.note(DEFAULT_DETECTOR_IMGSZ)
    if note:
        notes.append(note)
    reuse = probe.imgsz == imgsz and not opts.refine_crops
    return probe.imgsz, det if reuse else None


def _render(
    video: Path | None,
    pose2d: Pose2DSequence,
    pose3d: Pose3DSequence,
    out_path: Path,
    stages: dict[str, StageTime],
    opts: LiftOptions,
) -> None:
    """Side-by-side mp4, re-reading the video as a stream (blank left panel without one)."""
    from hgmamba_core.render import DEFAULT_VIEW, render_video
    from hgmamba_core.video import iter_frames

    t0 = time.perf_counter()
    frames = iter_frames(video, fps=opts.fps, rotate=opts.rotate) if video is not None else None
    try:
        render_video(
            frames, pose2d, pose3d, out_path, progress=opts.progress,
            view=opts.view or DEFAULT_VIEW, trail_s=opts.trail_s, backend=opts.render_backend,
        )  # fmt: skip
    finally:
        if frames is not None:
            frames.close()
    stages["render"] = StageTime(time.perf_counter() - t0, pose3d.num_frames)
