"""`hgmamba --help` and every `hgmamba CMD --help` stay light: no torch, ultralytics, cv2 or
matplotlib at import time (they cost seconds); the CLI's copies of core defaults stay equal."""

import inspect
import subprocess
import sys

HEAVY = ("torch", "ultralytics", "cv2", "matplotlib")

_PROBE = """
import sys
from hgmamba_cli.app import main
heavy = {heavy!r}
print("import", sorted(m for m in heavy if m in sys.modules))
for cmd in ([], ["lift"], ["render"], ["train"], ["eval"], ["info"]):
    try:
        main([*cmd, "--help"])
    except SystemExit as e:
        assert e.code == 0, (cmd, e.code)
    print(" ".join(cmd) or "-", sorted(m for m in heavy if m in sys.modules), file=sys.stderr)
"""


def test_importing_the_app_does_not_import_heavy_modules():
    code = (
        "import hgmamba_cli.app, sys; print('torch' in sys.modules, 'ultralytics' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False"]


def test_help_of_every_command_does_not_import_heavy_modules():
    r = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=HEAVY)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "import []"
    lines = r.stderr.strip().splitlines()
    assert [ln.split(" ", 1)[0] for ln in lines] == ["-", "lift", "render", "train", "eval", "info"]
    for ln in lines:
        assert ln.endswith(" []"), f"`hgmamba {ln.split()[0]} --help` imported {ln}"


def test_cli_defaults_equal_the_core_defaults():
    from hgmamba_cli import cmd_lift, cmd_render
    from hgmamba_core.pipeline import DEFAULT_OUT
    from hgmamba_core.render import DEFAULT_VIEW
    from hgmamba_core.world import WorldConfig

    assert cmd_lift.DEFAULT_OUT == DEFAULT_OUT
    assert cmd_render.DEFAULT_VIEW == DEFAULT_VIEW
    params = inspect.signature(cmd_lift.lift).parameters
    assert params["tilt"].default.default == WorldConfig().tilt_deg
    # None lets the pipeline pick the size (1280 for the demo clip, 640 otherwise).
    assert params["detector_imgsz"].default.default is None
