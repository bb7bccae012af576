"""`hgmamba lift` defaults: the demo's detector size, the shipped weights, and the error (with a
runnable `hgmamba train` command) when those weights are missing."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer

from hgmamba_cli.app import app, main
from hgmamba_core import pipeline
from hgmamba_core.pipeline import (
    DEMO_CLIP,
    DEMO_DETECTOR_MODE,
    LiftOptions,
    default_checkpoint_name,
    detector_imgsz,
    detector_mode,
    resolve_checkpoint,
    run_lift,
)

REPO_ASSETS = Path(pipeline.__file__).resolve().parents[1] / "assets"


def test_detector_size_is_1280_for_the_demo_clip_only():
    assert detector_imgsz(LiftOptions()) == 1280  # no VIDEO, no keypoints: the demo clip
    assert detector_imgsz(LiftOptions(video=Path("clip.mp4"))) == 640
    assert detector_imgsz(LiftOptions(detector_imgsz=320)) == 320  # the user's choice wins
    assert detector_imgsz(LiftOptions(video=Path("clip.mp4"), detector_imgsz=1280)) == 1280


def test_detector_mode_defaults_and_bad_values(tmp_path, capsys):
    """Tracking by crop for a user's video; whole frames for the demo and --refine-crops; a
    bad or contradictory --detector-mode is a one-line error before anything is loaded."""
    clip = Path("clip.mp4")
    assert detector_mode(LiftOptions(video=clip)) == "track"
    assert detector_mode(LiftOptions()) == DEMO_DETECTOR_MODE
    assert detector_mode(LiftOptions(video=clip, refine_crops=True)) == "full"
    assert detector_mode(LiftOptions(video=clip, detector_mode="FULL")) == "full"
    for args in (["--detector-mode", "roi"], ["--detector-mode", "track", "--refine-crops"]):
        out = tmp_path / "out"
        with pytest.raises(SystemExit) as e:
            main(["lift", "--no-render", "--out", str(out), *args])
        assert e.value.code != 0
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert "--detector-mode" in err and not out.exists()


@pytest.fixture
def empty_assets(tmp_path, monkeypatch) -> Path:
    """An assets folder with the demo clip but no lifter weights, searched alone."""
    assets = tmp_path / "assets"
    (assets / "demo").mkdir(parents=True)
    (assets / "weights").mkdir()
    (assets / DEMO_CLIP).symlink_to(REPO_ASSETS / DEMO_CLIP)
    monkeypatch.setattr(pipeline, "assets_dirs", lambda: [assets])
    return assets


def _train_help() -> str:
    r = subprocess.run(
        [sys.executable, "-m", "hgmamba_cli.app", "train", "--help"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ, COLUMNS="200"),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("variant", ["xs", "s", "b"])
def test_missing_weights_name_the_variant_and_a_train_command_that_parses(variant, empty_assets):
    with pytest.raises(pipeline.HGMambaError) as e:
        resolve_checkpoint(variant, None)
    msg = str(e.value)
    assert "\n" not in msg
    assert f"HGMamba-{variant}" in msg and default_checkpoint_name(variant) in msg
    cmd = re.search(r"`(hgmamba train [^`]*)`", msg).group(1)
    args = shlex.split(cmd)[2:]
    # Typer's own parser: unknown flags, missing required options or bad values raise here.
    train = typer.main.get_command(app).commands["train"]
    ctx = train.make_context("train", list(args))
    assert ctx.params["variant"] == variant and ctx.params["dataset"] == "h36m"
    data = pipeline.default_h36m_dir()
    if data is not None:
        assert ctx.params["data"] == data and data.is_dir()
    # The checkpoint it points to is the one that run writes.
    best = re.search(r"--checkpoint (\S+)", msg).group(1)
    assert Path(best) == ctx.params["out"] / "best.pt"
    help_text = _train_help()
    for flag in (a for a in args if a.startswith("--")):
        assert re.search(rf"(?<![\w-]){flag}(?![\w-])", help_text), f"no {flag} in train --help"


def test_cli_without_weights_is_one_line_error_with_the_command(empty_assets, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main(["lift", "--no-render", "--out", str(out)])  # the README's main job, on the demo
    assert e.value.code != 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "HGMamba-xs" in err and "`hgmamba train " in err and "--variant xs" in err
    assert not out.exists()  # failed before touching the disk


def _keypoints(path: Path, n: int = 40) -> Path:
    t = np.arange(n, dtype=np.float32)[:, None]
    base = np.array(
        [[500, 500], [470, 500], [470, 650], [470, 800], [530, 500], [530, 650], [530, 800],
         [500, 420], [500, 340], [500, 300], [500, 250], [550, 340], [570, 420], [580, 500],
         [450, 340], [430, 420], [420, 500]], dtype=np.float32,
    )  # fmt: skip
    kp = np.repeat(base[None], n, axis=0)
    kp[..., 0] += 2.0 * t
    kp = np.concatenate([kp, np.full((n, 17, 1), 0.9, np.float32)], axis=-1)
    np.savez(path, keypoints=kp, fps=25.0, size=np.array([1000, 1000]), layout="h36m")
    return path


def test_shipped_xs_weights_are_the_default(tmp_path, monkeypatch):
    """assets/weights/hgmamba_xs_h36m.pt (here in a temporary $HGMAMBA_ASSETS) is picked up
    with neither --checkpoint nor --variant."""
    from hgmamba_core.model import build_model
    from hgmamba_core.model.checkpoint import save_checkpoint

    assets = tmp_path / "assets"
    (assets / "weights").mkdir(parents=True)
    shipped = assets / "weights" / default_checkpoint_name("xs")
    save_checkpoint(shipped, build_model("xs"), meta={"trained": False})
    monkeypatch.setenv(pipeline.ASSETS_ENV, str(assets))
    assert resolve_checkpoint(None, None) == ("xs", shipped.resolve())
    assert resolve_checkpoint("xs", None) == ("xs", shipped.resolve())
    opts = LiftOptions(
        keypoints=_keypoints(tmp_path / "walk.npz"), out=tmp_path / "out", render=False,
        exports=("npy",), progress=False,
    )  # fmt: skip
    rep = run_lift(opts)
    assert rep.variant == "xs" and Path(rep.checkpoint) == shipped.resolve()
    assert np.load(tmp_path / "out" / "walk" / "pose3d.npy").shape == (40, 1, 17, 3)


def test_preliminary_checkpoint_is_announced():
    from hgmamba_core.pipeline import checkpoint_notes

    assert checkpoint_notes({"status": "final"}) == [] and checkpoint_notes(None) == []
    notes = checkpoint_notes({"status": "preliminary", "status_note": "P1 about 200 mm"})
    assert notes == ["preliminary lifter weights: P1 about 200 mm"]


def test_shipped_xs_weights_load_and_say_what_they_are():
    """The shipped XS checkpoint (if present) is a real XS lifter whose metadata says its status."""
    from hgmamba_core.assets import assets_dirs

    path = assets_dirs()[-1] / "weights" / "hgmamba_xs_h36m.pt"
    if not path.is_file():
        pytest.skip("no XS weights shipped in assets/weights")
    from hgmamba_core import load_lifter

    model = load_lifter(path)
    assert model.cfg.name == "xs" and model.cfg.frames == 27
    assert model.meta["dataset"] == "h36m" and model.meta["status"] in ("preliminary", "final")


def test_demo_lifts_everyone_unless_a_person_is_asked_for():
    from hgmamba_core.pipeline import person_choice

    assert person_choice(LiftOptions()) == "all"  # no VIDEO: the demo crowd
    assert person_choice(LiftOptions(person="main")) == "main"  # an explicit --person wins
    assert person_choice(LiftOptions(video=Path("clip.mp4"))) == "main"
    assert person_choice(LiftOptions(keypoints=Path("kp.npz"), person="3")) == "3"


def test_wild_weights_win_over_the_benchmark_file_when_shipped(tmp_path, monkeypatch):
    """lift prefers hgmamba_<v>_wild.pt (trained for real videos) next to hgmamba_<v>_h36m.pt;
    eval keeps the benchmark file (cmd_eval's default)."""
    from hgmamba_core.model import build_model
    from hgmamba_core.model.checkpoint import save_checkpoint
    from hgmamba_core.pipeline import wild_checkpoint_name

    weights = tmp_path / "assets" / "weights"
    weights.mkdir(parents=True)
    save_checkpoint(weights / default_checkpoint_name("xs"), build_model("xs"))
    monkeypatch.setenv(pipeline.ASSETS_ENV, str(tmp_path / "assets"))
    assert resolve_checkpoint(None, None)[1] == (weights / default_checkpoint_name("xs")).resolve()
    save_checkpoint(weights / wild_checkpoint_name("xs"), build_model("xs"))
    assert resolve_checkpoint(None, None)[1] == (weights / wild_checkpoint_name("xs")).resolve()
