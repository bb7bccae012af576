"""pose3d.html: data and camera on the Python side; a real headless Chromium for the page.

The page is opened from a result made of real Human3.6M motion (two people: S1 walking, S9
directions, 3D ground truth, z up, metres). The browser tests skip when no Chromium is
installed (Debian: `apt-get install chromium`).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from cdp_browser import Browser, find_chromium

from hgmamba_cli.app import main
from hgmamba_core.export import export_all
from hgmamba_core.poses import Pose3DSequence
from hgmamba_core.viewer import camera_axes, viewer_camera, viewer_html, viewer_payload


@pytest.fixture(scope="module")
def two_people(h36m_mini) -> Pose3DSequence:
    a = h36m_mini["S1/Walking 1"][:120:2]
    b = h36m_mini["S9/Directions"][:120:2] + np.float32([1.5, 2.0, 0.0])
    joints = np.stack([a, b], axis=1)
    joints[10:20, 1] = np.nan  # person 2 absent for 10 frames
    joints[5, 0, 13] = np.nan  # one missing wrist
    meta = {"image_size": [1000, 1000], "camera_tilt_deg": 10.0}
    return Pose3DSequence(joints=joints, track_ids=[3, 7], fps=25.0, variant="xs", meta=meta)


@pytest.fixture(scope="module")
def result_dir(two_people, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("walk")
    export_all(two_people, d, ("npy", "json", "html"))
    return d


def test_payload_holds_every_frame_in_mm_with_nulls(two_people):
    data = viewer_payload(two_people)
    assert (data["frames"], data["persons"], data["track_ids"]) == (60, 2, [3, 7])
    assert data["joints"][12][1] is None  # absent person
    assert data["joints"][5][0][3 * 13 : 3 * 13 + 3] == [None, None, None]
    got = np.asarray(data["joints"][0][0], dtype=float).reshape(17, 3) / 1000
    np.testing.assert_allclose(got, two_people.joints[0, 0], atol=5e-4)
    assert data["joint_parents"][0] == 0 and data["joint_parents"][3] == 2


def test_page_is_one_offline_file(two_people):
    page = viewer_html(two_people, title="walk </script>")
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|https?://|import\(", page)
    assert page.count("</script>") == 2  # the data and the script, nothing closed early
    data = page.split('type="application/json">')[1].split("</script>")[0]
    assert json.loads(data)["frames"] == 60


def test_camera_axes_follow_pitch_and_roll():
    level = camera_axes(0.0, 0.0)  # columns: camera right, down, forward in world coordinates
    np.testing.assert_allclose(level, [[1, 0, 0], [0, 0, 1], [0, -1, 0]], atol=1e-12)
    down = camera_axes(30.0, 0.0)[:, 2]
    np.testing.assert_allclose(down, [0, np.cos(np.pi / 6), -np.sin(np.pi / 6)], atol=1e-12)
    assert camera_axes(0.0, 20.0)[2, 0] < -0.3  # positive roll: the image's right side dips


def test_camera_from_an_estimate_and_from_the_fixed_tilt():
    est = viewer_camera({"image_size": [1920, 1080],
                         "camera": {"pitch_deg": 15.0, "roll_deg": 2.0, "height_m": 1.3,
                                    "focal_px": 1500.0, "method": "stance feet"}})  # fmt: skip
    assert est.position == (0.0, 0.0, 1.3)
    assert est.half_w == pytest.approx(960 / 1500) and "1.3 m high" in est.label
    fixed = viewer_camera({"image_size": [640, 480], "camera_tilt_deg": 10.0})
    assert fixed.half_w == pytest.approx(0.5) and "not estimated" in fixed.label
    assert viewer_camera({}) is None


def test_view_command_rebuilds_the_page(result_dir, capsys):
    (result_dir / "pose3d.html").unlink()
    with pytest.raises(SystemExit) as e:
        main(["view", str(result_dir), "--no-open"])
    assert e.value.code == 0
    assert (result_dir / "pose3d.html").stat().st_size > 10_000
    assert "pose3d.html" in capsys.readouterr().out


def test_view_command_on_a_folder_without_results_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["view", str(tmp_path), "--no-open"])
    assert e.value.code != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pose3d.npy" in err


# ----------------------------------------------------------------------------- real browser
needs_chromium = pytest.mark.skipif(
    find_chromium() is None, reason="no chromium on PATH (Debian: apt-get install chromium)"
)


def _canvas(img: np.ndarray) -> np.ndarray:
    return img[40:-45].astype(np.int16)  # below the info line, above the control bar


def _changed(a: np.ndarray, b: np.ndarray) -> float:
    return float((np.abs(_canvas(a) - _canvas(b)).max(axis=-1) > 40).mean())


@needs_chromium
def test_page_in_chromium_draws_plays_scrubs_and_orbits(result_dir, tmp_path):
    with Browser(width=900, height=600) as b:
        b.open(result_dir / "pose3d.html")
        b.wait_for("document.body.dataset.ready === '1'")
        first = b.screenshot()
        canvas = _canvas(first)
        assert (canvas.min(axis=-1) < 200).mean() > 0.005, "canvas is blank"
        blue = (canvas[..., 0] > 150) & (canvas[..., 2] < 100)  # person 1's #1f77b4 (BGR)
        red = (canvas[..., 2] > 150) & (canvas[..., 0] < 100)  # person 2's #d62728
        assert blue.sum() > 200 and red.sum() > 200, "both skeletons drawn"

        box = json.loads(
            b.eval("JSON.stringify(document.getElementById('frame').getBoundingClientRect())")
        )
        y = box["y"] + box["height"] / 2
        b.drag(box["x"] + 4, y, box["x"] + 0.8 * box["width"], y)
        frame = int(b.eval("document.getElementById('frame').value"))
        assert 40 <= frame <= 55, frame
        scrubbed = b.screenshot()
        assert _changed(first, scrubbed) > 0.002, "moving the slider did not change the drawing"

        b.drag(450, 300, 600, 260)  # orbit
        orbited = b.screenshot()
        assert _changed(scrubbed, orbited) > 0.01, "dragging did not orbit the view"

        b.eval("document.getElementById('play').click()")
        time.sleep(0.6)
        b.eval("document.getElementById('play').click()")
        assert int(b.eval("document.getElementById('frame').value")) != frame, "play did nothing"
        assert b.errors == [], b.errors
        for name, img in (("first", first), ("scrubbed", scrubbed), ("orbited", orbited)):
            cv2.imwrite(str(tmp_path / f"{name}.png"), img)  # to look at when it fails
