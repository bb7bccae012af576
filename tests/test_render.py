"""Rendering: H.264 output with the right frame count, pixels that follow the poses, figures,
and `hgmamba render` on saved results (success and the bad-input matrix)."""

from __future__ import annotations

import subprocess
import sys

import av
import cv2
import numpy as np
import pytest

from hgmamba_core.errors import HGMambaError
from hgmamba_core.export import export_all
from hgmamba_core.poses import Pose2DSequence, Pose3DSequence
from hgmamba_core.render import (
    DEFAULT_VIEW,
    RENDER_BACKENDS,
    axis_limits,
    draw_pose2d,
    eval_to_display,
    floor_region,
    make_panel,
    panel_limits,
    parse_frames,
    parse_view,
    person_color,
    render_figure_png,
    render_video,
)
from hgmamba_core.render.video_writer import open_video_writer
from hgmamba_core.skeleton import NUM_JOINTS

W, H = 320, 240


def probe(path) -> tuple[str, int, int, int]:
    """(codec name, decoded frame count, width, height) read back with PyAV."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        name, w, h = s.codec_context.name, s.codec_context.width, s.codec_context.height
        n = sum(1 for _ in c.decode(video=0))
    return name, n, w, h


def numbered_frames(n: int, w: int = W, h: int = H):
    for i in range(n):
        f = np.full((h, w, 3), 60, np.uint8)
        cv2.putText(f, str(i), (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
        yield f


@pytest.fixture(scope="module")
def clip(h36m_mini):
    """20 frames of real motion: 3D in metres z-up, 2D scaled into a W x H frame."""
    p3 = h36m_mini["S1/Walking 1"][:40:2].astype(np.float32)
    p2 = h36m_mini["S1/Walking 1.54138969"][:40:2] * np.float32(H / 1002)
    n = len(p3)
    pose2d = Pose2DSequence(p2[:, None], np.full((n, 1, NUM_JOINTS), 0.9), [1], 25.0, (W, H))
    pose3d = Pose3DSequence(p3[:, None], [1], 25.0, variant="xs")
    return pose2d, pose3d


# --------------------------------------------------------------------------- video writer
def test_writer_h264_frame_count_and_odd_size(tmp_path):
    out = tmp_path / "v.mp4"
    with open_video_writer(out, 30.0) as w:
        for f in numbered_frames(7, 161, 121):
            w.write(f)
    assert w.codec == "h264"
    assert probe(out) == ("h264", 7, 162, 122)  # padded to even for yuv420p


def test_writer_interrupted_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt), open_video_writer(tmp_path / "v.mp4", 25.0) as w:
        for i, f in enumerate(numbered_frames(10)):
            w.write(f)
            if i == 4:
                raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_writer_mp4v_fallback_and_errors(tmp_path):
    out = tmp_path / "m.mp4"
    with open_video_writer(out, 25.0, codec="mp4v") as w:
        for f in numbered_frames(5):
            w.write(f)
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    cap.release()
    with pytest.raises(HGMambaError, match="fps"), open_video_writer(tmp_path / "x.mp4", 0):
        pass
    with (
        pytest.raises(HGMambaError, match="expected"),
        open_video_writer(tmp_path / "y.mp4", 5) as w,
    ):
        w.write(np.zeros((10, 10, 3), np.uint8))
        w.write(np.zeros((12, 10, 3), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.mp4"]


# --------------------------------------------------------------------------- drawing
@pytest.mark.parametrize("backend", RENDER_BACKENDS)
def test_3d_panel_follows_the_pose(clip, backend):
    _, pose3d = clip
    panel = make_panel(backend, 200, axis_limits(pose3d.joints), track_ids=[1])
    a = panel.draw(pose3d.joints[0])
    b = panel.draw(pose3d.joints[10])
    a2 = panel.draw(pose3d.joints[0])
    empty = panel.draw(np.full((1, NUM_JOINTS, 3), np.nan))
    panel.close()
    assert a.shape == (200, 200, 3) and a.dtype == np.uint8
    assert np.abs(a.astype(int) - b).sum(-1).astype(bool).sum() > 200  # the skeleton moved
    np.testing.assert_array_equal(a, a2)  # the background is restored, nothing accumulates
    assert (np.abs(a.astype(int) - empty).sum(-1) > 0).sum() > 200  # a skeleton was drawn


def test_2d_overlay_colours_sides_and_alpha(clip):
    pose2d, _ = clip
    kp = pose2d.keypoints[0]
    base = np.full((H, W, 3), 255, np.uint8)
    strong = draw_pose2d(base.copy(), kp, np.ones((1, NUM_JOINTS)))
    weak = draw_pose2d(base.copy(), kp, np.full((1, NUM_JOINTS), 0.3))
    ink_strong = (255 - strong.astype(int)).sum()
    ink_weak = (255 - weak.astype(int)).sum()
    assert ink_strong > 0 and ink_weak < 0.6 * ink_strong  # low confidence is drawn fainter
    # Left limbs blue, right limbs red: sample the middle of the left and right shins.
    ml = ((kp[0, 5] + kp[0, 6]) / 2).round().astype(int)
    mr = ((kp[0, 2] + kp[0, 3]) / 2).round().astype(int)
    left_px, right_px = strong[ml[1], ml[0]].astype(int), strong[mr[1], mr[0]].astype(int)
    assert left_px[0] > left_px[2] and right_px[2] > right_px[0]  # BGR


@pytest.mark.parametrize("backend", RENDER_BACKENDS)
def test_render_video_frame_count_equals_the_input(tmp_path, clip, backend):
    pose2d, pose3d = clip
    out = render_video(numbered_frames(20), pose2d, pose3d, tmp_path / "o.mp4", progress=False,
                       backend=backend)  # fmt: skip
    name, n, w, h = probe(out)
    assert (name, n, h) == ("h264", 20, H) and w == W + H  # input | square 3D panel


def test_render_video_frames_codec_and_layout(tmp_path, clip):
    pose2d, pose3d = clip
    out2 = render_video(numbered_frames(20), pose2d, pose3d, tmp_path / "s.mp4",
                        frames=slice(5, 12), progress=False, fps=10)  # fmt: skip
    assert probe(out2)[1] == 7
    with av.open(str(out2)) as c:
        assert float(c.streams.video[0].average_rate) == pytest.approx(10.0)


def test_render_video_without_video_and_short_video(tmp_path, clip):
    pose2d, pose3d = clip
    # No input video: the 2D skeleton on a blank canvas; a video that runs out early: blank too.
    assert probe(render_video(None, pose2d, pose3d, tmp_path / "a.mp4", progress=False))[1] == 20
    out = render_video(numbered_frames(5), pose2d, pose3d, tmp_path / "b.mp4", progress=False)
    assert probe(out)[1] == 20
    # Neither video nor 2D: the 3D panel alone.
    name, n, w, h = probe(render_video(None, None, pose3d, tmp_path / "c.mp4", progress=False))
    assert n == 20 and w == h


def test_render_multi_person_and_gt(tmp_path, clip, h36m_mini):
    pose2d, pose3d = clip
    other = h36m_mini["S9/Directions"][:20].astype(np.float32)
    j = np.stack([pose3d.joints[:, 0], other], axis=1)
    j[5:8, 1] = np.nan  # second person missing for a while
    kp = np.concatenate([pose2d.keypoints, pose2d.keypoints + 30], axis=1)
    two2d = Pose2DSequence(kp, np.ones(kp.shape[:3]), [1, 6], 25.0, (W, H))
    two3d = Pose3DSequence(j, [1, 6], 25.0)
    assert probe(render_video(None, two2d, two3d, tmp_path / "m.mp4", progress=False))[1] == 20
    gt = pose3d.joints[:, 0]
    out = render_video(None, None, pose3d, tmp_path / "g.mp4", gt=gt, progress=False)
    assert probe(out)[1] == 20


def test_figure_png(tmp_path, clip):
    pose2d, pose3d = clip
    out = render_figure_png(numbered_frames(20), pose2d, pose3d, tmp_path / "f.png", count=3)
    img = cv2.imread(str(out))
    assert img is not None and img.shape[0] > 300 and img.shape[1] > img.shape[0] * 0.5
    out2 = render_figure_png(None, None, pose3d, tmp_path / "g.png", gt=pose3d.joints[:, 0])
    assert cv2.imread(str(out2)) is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png", "g.png"]


def test_eval_to_display_camera_frame():
    """Camera-frame poses (y down) become z-up with the feet on the floor."""
    rng = np.random.default_rng(0)
    pose = np.zeros((3, NUM_JOINTS, 3))
    pose[:, 10] = [0, -1600, 0]  # head 1.6 m above the pelvis (camera y points down)
    pose[:, 3] = [0, 900, 0]  # an ankle 0.9 m below
    pose += rng.normal(0, 1, pose.shape)
    (out,) = eval_to_display(pose)
    assert np.nanmin(out[..., 2]) == pytest.approx(0.0)
    assert (out[:, 10, 2] - out[:, 0, 2]) == pytest.approx(1.6, abs=0.01)


def test_parsers():
    assert parse_view("-65,15") == (-65.0, 15.0)
    assert parse_frames("3:9") == slice(3, 9) and parse_frames(":9") == slice(None, 9)
    for bad in ("1", "a,b", "1,2,3", "nan,1"):
        with pytest.raises(HGMambaError):
            parse_view(bad)
    for bad in ("5", "a:b", "1:2:3", "-3:5"):
        with pytest.raises(HGMambaError):
            parse_frames(bad)


# --------------------------------------------------------------------------- the two 3D backends
def _ink(img: np.ndarray) -> np.ndarray:
    """Pixels in skeleton colour (saturated; the grid and the background are grey/white)."""
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    return (hsv[..., 1] > 80) & (hsv[..., 2] > 40)


@pytest.mark.parametrize("view", [DEFAULT_VIEW, (-30.0, 20.0), (40.0, 5.0), (-120.0, 60.0)])
def test_opencv_projection_is_matplotlibs(h36m_mini, view):
    """Every joint lands on the pixel mplot3d puts it on (same limits, view, zoom, focal)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from mpl_toolkits.mplot3d import proj3d

    from hgmamba_core.render import BOX_ZOOM, FOCAL_LENGTH, setup_axes3d
    from hgmamba_core.render.panel_cv import ViewProjection

    pts = h36m_mini["S1/Walking 1"][::50].reshape(-1, 3).astype(np.float64)
    lim = axis_limits(pts)
    S = 300
    fig = Figure(figsize=(S / 100, S / 100), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0), projection="3d")
    setup_axes3d(ax, lim, view)
    fig.canvas.draw()
    x, y, _ = proj3d.proj_transform(pts[:, 0], pts[:, 1], pts[:, 2], ax.get_proj())
    disp = ax.transData.transform(np.c_[x, y])
    want = np.c_[disp[:, 0], S - disp[:, 1]]
    got, _ = ViewProjection.fit(lim, view, S, BOX_ZOOM, FOCAL_LENGTH).project(pts)
    np.testing.assert_allclose(got, want, atol=0.01)


@pytest.mark.parametrize("backend", RENDER_BACKENDS)
@pytest.mark.parametrize("scene", ["standing", "walking", "crowd"])
def test_panel_person_fills_the_panel(h36m_mini, scene, backend):
    """Both backends keep a person at >= 40 % of the panel height (issue #15)."""
    walk = h36m_mini["S1/Walking 1"][:300:2].astype(np.float32)[:, None]
    if scene == "standing":
        J = h36m_mini["S9/Directions"][:60].astype(np.float32)[:, None]
    elif scene == "walking":
        J = walk
    else:  # four people spread over 8 m: the window follows them
        J = np.concatenate([walk + [dx, dy, 0] for dx, dy in [(0, 0), (3, 1), (-3, 2), (5, -1)]], 1)
    lim = panel_limits(J, 25.0)
    S = 300
    panel = make_panel(backend, S, lim[0], DEFAULT_VIEW, list(range(J.shape[1])),
                       region=floor_region(J))  # fmt: skip
    try:
        for i in range(0, len(J), 25):
            one = J[i].copy()
            one[1:] = np.nan  # measure person 0 alone
            rows = np.flatnonzero(_ink(panel.draw(one, limits=lim[i])).any(1))
            assert rows.size and (rows.max() - rows.min() + 1) / S >= 0.40, (scene, i)
    finally:
        panel.close()


@pytest.mark.parametrize("backend", RENDER_BACKENDS)
def test_panel_left_in_the_video_is_left_in_3d(h36m_mini, backend):
    """World x < 0 (the left of the image) is drawn in the left half under the default view."""
    g = h36m_mini["S9/Directions"][:1].astype(np.float32)
    two = np.concatenate([g - [0.8, 0, 0], g + [0.8, 0, 0]])  # person 0 left, person 1 right
    panel = make_panel(backend, 300, axis_limits(two[None]), DEFAULT_VIEW, [0, 1])
    try:
        for p in (0, 1):
            only = two.copy()
            only[1 - p] = np.nan
            cols = np.flatnonzero(_ink(panel.draw(only)).any(0))
            assert (cols.max() < 150) if p == 0 else (cols.min() > 150)
    finally:
        panel.close()


def test_opencv_panel_person_colours(h36m_mini):
    """Each person's spine is drawn in their id colour (tab10 order of the result's persons)."""
    from hgmamba_core.render import BOX_ZOOM, FOCAL_LENGTH
    from hgmamba_core.render.panel_cv import ViewProjection

    g = h36m_mini["S9/Directions"][0].astype(np.float64)
    three = np.stack([g - [1.0, 0, 0], g, g + [1.0, 0, 0]])
    lim = axis_limits(three[None])
    S = 300
    img = make_panel("opencv", S, lim, DEFAULT_VIEW, [7, 3, 12]).draw(three)
    proj = ViewProjection.fit(lim, DEFAULT_VIEW, S, BOX_ZOOM, FOCAL_LENGTH)
    for p in range(3):
        ((x, y),), _ = proj.project(((three[p, 7] + three[p, 8]) / 2)[None])
        want = np.array(person_color(p)[::-1]) * 255  # BGR
        got = img[int(round(y)), int(round(x))].astype(float)
        assert np.abs(got - want).max() < 30, (p, got, want)


def test_2d_overlay_person_colours(clip):
    pose2d, _ = clip
    kp = pose2d.keypoints[0, 0]
    two = np.stack([kp, kp + [120, 0]])
    img = draw_pose2d(np.full((H, W, 3), 255, np.uint8), two, np.ones((2, NUM_JOINTS)), [4, 9])
    for p in range(2):
        x, y = ((two[p, 7] + two[p, 8]) / 2).round().astype(int)  # spine: the person colour
        want = np.array(person_color(p)[::-1]) * 255
        assert np.abs(img[y, x].astype(float) - want).max() < 30, p


def test_opencv_panel_trail_and_ground_truth(clip):
    _, pose3d = clip
    j = pose3d.joints
    lim = axis_limits(j)
    plain = make_panel("opencv", 200, lim, track_ids=[1])
    trail = make_panel("opencv", 200, lim, track_ids=[1], trail=10)
    for i in range(len(j)):
        a, b = plain.draw(j[i]), trail.draw(j[i])
    assert (np.abs(a.astype(int) - b).sum(-1) > 30).sum() > 30  # the path on the floor
    gt = make_panel("opencv", 200, lim, track_ids=[1], with_gt=True)
    with_gt = gt.draw(j[0], j[0, 0] + [0.3, 0, 0])
    without = gt.draw(j[0])
    dark = (with_gt.astype(int).sum(-1) < 150) & (without.astype(int).sum(-1) > 300)
    assert dark.sum() > 50  # the dashed ground truth, near black


def test_window_never_leaves_everyone_out(h36m_mini):
    """A crowd spread wider than one readable window: someone is in view on every frame, also
    when the person followed walks off and the window moves on to another."""
    walk = h36m_mini["S1/Walking 1"][:120].astype(np.float32)
    J = np.full((120, 3, NUM_JOINTS, 3), np.nan, np.float32)
    J[:50, 0] = walk[:50] + [-6.0, 0.0, 0.0]  # the first person leaves after 2 s
    J[:, 1] = walk + [6.0, 3.0, 0.0]
    J[30:, 2] = walk[30:] + [0.0, -4.0, 0.0]
    lim = panel_limits(J, 25.0)
    pelvis = J[:, :, 0, :2]
    with np.errstate(invalid="ignore"):
        inside = ((pelvis >= lim[:, None, :2, 0]) & (pelvis <= lim[:, None, :2, 1])).all(-1)
    assert inside.any(1).all(), np.flatnonzero(~inside.any(1))
    assert inside[:50, 0].all()  # the first (main) person is followed while present


def test_encoder_keeps_colours(tmp_path):
    """Flat patches (white, the person colours) come back within 2 levels through H.264."""
    patches = [(1.0, 1.0, 1.0)] + [person_color(p) for p in range(6)]
    frame = np.concatenate(
        [np.full((64, 64, 3), np.array(c[::-1]) * 255, np.uint8) for c in patches], 1
    )
    with open_video_writer(tmp_path / "c.mp4", 25.0) as w:
        for _ in range(3):
            w.write(frame)
    with av.open(str(tmp_path / "c.mp4")) as c:
        back = next(c.decode(video=0)).to_ndarray(format="bgr24")
    for k in range(len(patches)):
        sl = np.s_[16:48, k * 64 + 16 : k * 64 + 48]
        err = np.abs(back[sl].astype(float).mean((0, 1)) - frame[sl].astype(float).mean((0, 1)))
        assert err.max() <= 2.0, (k, err)


# --------------------------------------------------------------------------- hgmamba render
def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The real command in a fresh interpreter (what a user runs)."""
    return subprocess.run([sys.executable, "-m", "hgmamba_cli.app", "render", *args],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def run_inprocess(capsys, *args: str) -> tuple[int, str]:
    """The same entry point, main(argv), without paying the interpreter start-up each time."""
    from hgmamba_cli.app import main  # noqa: PLC0415

    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["render", *args])
    return int(e.value.code or 0), capsys.readouterr().err


@pytest.fixture(scope="module")
def result_dir(tmp_path_factory, clip):
    pose2d, pose3d = clip
    d = tmp_path_factory.mktemp("results") / "walk"
    pose2d.save(d / "pose2d.npz")
    export_all(pose3d, d, ["npy", "json"])
    video = d.parent / "walk.mp4"
    with open_video_writer(video, 25.0) as w:
        for f in numbered_frames(20):
            w.write(f)
    return d


def test_cli_render_video_png_and_gt(result_dir, clip, capsys):
    r = run_cli(str(result_dir), "--video", str(result_dir.parent / "walk.mp4"),
                "--view", "-30,20", "--frames", "2:14")  # fmt: skip
    assert r.returncode == 0, r.stderr
    name, n, w, h = probe(result_dir / "walk_3d.mp4")
    assert (name, n, w, h) == ("h264", 12, W + H, H)
    rc, err = run_inprocess(
        capsys, str(result_dir), "--render-backend", "matplotlib", "--frames", "0:5"
    )
    assert rc == 0, err
    assert probe(result_dir / "walk_3d.mp4")[1] == 5
    rc, err = run_inprocess(capsys, str(result_dir), "--png")
    assert rc == 0, err
    assert cv2.imread(str(result_dir / "walk_figure.png")) is not None
    _, pose3d = clip
    gt_mm = (pose3d.joints[:, 0] - pose3d.joints[:, 0, :1]) * 1000
    npz = result_dir.parent / "preds.npz"
    np.savez(npz, pred=gt_mm + 10.0, gt=gt_mm)
    rc, err = run_inprocess(capsys, str(result_dir), "--gt", str(npz))
    assert rc == 0, err
    assert probe(result_dir / "walk_gt_3d.mp4")[1] == 20


def _bad_gt(tmp_path):
    p = tmp_path / "bad_gt.npz"
    np.savez(p, pred=np.zeros((5, 16, 3)), gt=np.zeros((5, 16, 3)))
    return p


@pytest.mark.parametrize(
    "case",
    ["missing_dir", "empty_dir", "bad_view", "bad_frames", "empty_frames", "missing_video",
     "missing_gt", "bad_gt", "bad_fps", "bad_backend"],
)  # fmt: skip
def test_cli_render_bad_inputs(tmp_path, result_dir, case, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = {
        "missing_dir": [str(tmp_path / "nope")],
        "empty_dir": [str(empty)],
        "bad_view": [str(result_dir), "--view", "left"],
        "bad_frames": [str(result_dir), "--frames", "x:3"],
        "empty_frames": [str(result_dir), "--frames", "500:600"],
        "missing_video": [str(result_dir), "--video", str(tmp_path / "none.mp4")],
        "missing_gt": [str(result_dir), "--gt", str(tmp_path / "none.npz")],
        "bad_gt": [str(result_dir), "--gt", str(_bad_gt(tmp_path))],
        "bad_fps": [str(result_dir), "--fps", "-5"],
        "bad_backend": [str(result_dir), "--render-backend", "vtk"],
    }[case]
    before = sorted(p.name for p in result_dir.iterdir()) + sorted(p.name for p in empty.iterdir())
    if case in ("missing_dir", "bad_view"):  # two through a real subprocess
        r = run_cli(*args)
        rc, err = r.returncode, r.stderr
    else:
        rc, err = run_inprocess(capsys, *args)
    assert rc != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hgmamba: error:"), err
    after = sorted(p.name for p in result_dir.iterdir()) + sorted(p.name for p in empty.iterdir())
    assert after == before  # nothing written, not even a temporary


def test_cli_backends_equal_the_core_ones():
    from hgmamba_cli import cmd_render

    assert cmd_render.RENDER_BACKENDS == RENDER_BACKENDS and RENDER_BACKENDS[0] == "opencv"


def test_render_reapplies_the_lifts_rotate(tmp_path):
    """`hgmamba render --video` turns the frames as `lift --rotate` did (pose3d.json says)."""
    import json

    from hgmamba_core.render.result import _recorded_rotate

    assert _recorded_rotate(tmp_path) == 0  # no pose3d.json
    for value, want in ((90, 90), (270, 270), (45, 0), ("90", 0)):
        (tmp_path / "pose3d.json").write_text(json.dumps({"metadata": {"rotate_deg": value}}))
        assert _recorded_rotate(tmp_path) == want
    (tmp_path / "pose3d.json").write_text("{not json")
    assert _recorded_rotate(tmp_path) == 0
