"""Side-by-side videos and paper-style figures: input + 2D skeleton | 3D skeleton.

Speed: the 3D panel is drawn by panel_cv.SkeletonCanvasPanel (the default: mplot3d's
projection in numpy, OpenCV lines, well under 5 ms a frame for 8 people) or by
Skeleton3DPanel here (one Agg figure built once; per frame only the skeleton artists change,
blitted over a cached background; ~30x slower when the window moves). The 2D overlay blends
each person once; encoding runs on video_writer's worker thread. Figures use Matplotlib.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from hgmamba_core.errors import HGMambaError
from hgmamba_core.fileio import atomic_path
from hgmamba_core.poses import Pose2DSequence, Pose3DSequence
from hgmamba_core.render.video_writer import open_video_writer
from hgmamba_core.skeleton import NUM_JOINTS, bone_color, h36m_bones

# (azimuth, elevation) degrees: from behind the camera (y points away from it), a little to
# its left and above, so left in the video is left in 3D.
DEFAULT_VIEW = (-78.0, 14.0)
MAX_PANEL_HEIGHT = 720
GT_COLOR = (0.10, 0.10, 0.10)
# Person colours (RGB 0..1) for multi-person scenes: tab10 without red/blue, used for L/R.
PERSON_COLORS = (
    (0.17, 0.63, 0.17), (1.00, 0.50, 0.05), (0.58, 0.40, 0.74), (0.55, 0.34, 0.29),
    (0.89, 0.47, 0.76), (0.74, 0.74, 0.13), (0.09, 0.75, 0.81), (0.50, 0.50, 0.50),
)  # fmt: skip
HEAD = 10


# --------------------------------------------------------------------------- colours
def person_color(i: int) -> tuple[float, float, float]:
    return PERSON_COLORS[i % len(PERSON_COLORS)]


def bone_colors(person: int | None) -> list[tuple[float, float, float]]:
    """RGB per bone of h36m_bones(): left blue / right red for one person; for several, a person
    colour with left limbs lighter and right limbs darker so sides stay distinguishable."""
    out = []
    for _, child in h36m_bones():
        if person is None:
            out.append(bone_color(child))
            continue
        base = person_color(person)
        side = bone_color(child)
        if side == bone_color(11):  # left
            out.append(tuple(v + (1.0 - v) * 0.45 for v in base))
        elif side == bone_color(14):  # right
            out.append(tuple(v * 0.6 for v in base))
        else:
            out.append(base)
    return out


def _bgr255(rgb: tuple[float, float, float]) -> tuple[int, int, int]:
    return (int(rgb[2] * 255), int(rgb[1] * 255), int(rgb[0] * 255))


# --------------------------------------------------------------------------- 2D overlay
def _blend_skeleton(img, kp: np.ndarray, lines: list, dots: list, thickness: int) -> None:
    """Draw one person's bones and joints with per-item opacity, blending only their box.

    kp (17, 2) pixels; lines: (joint a, joint b, bgr, alpha); dots: (joint, bgr, alpha).
    Why one pass: the colours go solid onto a copy of the box and the opacities, anti-aliased,
    into a mask, then a single weighted blend; one blend per bone cost ~10 ms for 8 people.
    Where items overlap the later one wins (as with sequential blending, less see-through).
    """
    h, w = img.shape[:2]
    used = sorted({j for a, b, _, _ in lines for j in (a, b)} | {j for j, _, _ in dots})
    pts = kp[used]
    pad = thickness + 3
    x0, y0 = np.maximum(np.floor(pts.min(0)).astype(int) - pad, 0)
    x1, y1 = np.minimum(np.ceil(pts.max(0)).astype(int) + pad + 1, (w, h))
    if x1 <= x0 or y1 <= y0:
        return
    roi = img[y0:y1, x0:x1]
    over = roi.copy()
    mask = np.zeros(roi.shape[:2], np.uint8)
    shift = 4  # cv2 sub-pixel bits
    q = np.round(np.nan_to_num(kp - (x0, y0)) * (1 << shift)).astype(np.int64).tolist()
    for a, b, color, alpha in lines:
        cv2.line(over, q[a], q[b], color, thickness + 2, cv2.LINE_8, shift)
        cv2.line(mask, q[a], q[b], int(255 * alpha + 0.5), thickness, cv2.LINE_AA, shift)
    for j, color, alpha in dots:
        cv2.circle(over, q[j], (thickness + 1) << shift, color, -1, cv2.LINE_8, shift)
        cv2.circle(mask, q[j], thickness << shift, int(255 * alpha + 0.5), -1, cv2.LINE_AA, shift)
    wgt = mask.astype(np.float32) * np.float32(1 / 255)
    roi[:] = cv2.blendLinear(over, roi, wgt, 1.0 - wgt)


def draw_pose2d(
    img: np.ndarray, keypoints: np.ndarray, scores: np.ndarray | None,
    track_ids: Iterable[int] | None = None, min_alpha: float = 0.15,
) -> np.ndarray:  # fmt: skip
    """Draw H36M-17 skeletons (P, 17, 2) pixels on a BGR image in place; opacity = confidence.

    Left limbs blue, right limbs red; with several persons each also gets a coloured id label.
    """
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, NUM_JOINTS, 2)
    sc = (np.ones(kp.shape[:2]) if scores is None else np.asarray(scores, np.float64)).reshape(
        kp.shape[:2]
    )
    ids = list(track_ids) if track_ids is not None else list(range(len(kp)))
    multi = len(kp) > 1
    h, w = img.shape[:2]
    th = max(2, int(round(min(h, w) / 200)))
    # Joint dots that stand out from the background: white on dark images, dark on light ones.
    dot = (240, 240, 240) if img[::8, ::8].mean() < 140 else (60, 60, 60)
    bones = h36m_bones()
    present = np.isfinite(kp).all(-1)
    confs = np.where(np.isfinite(sc), np.clip(sc, 0.0, 1.0), 0.0)
    for p in range(len(kp)):
        if not present[p].any():
            continue
        ok, conf = present[p].tolist(), np.maximum(confs[p], min_alpha).tolist()
        cols = [_bgr255(c) for c in bone_colors(p if multi else None)]
        lines = [(a, b, col, min(conf[a], conf[b]))
                 for (a, b), col in zip(bones, cols, strict=True) if ok[a] and ok[b]]  # fmt: skip
        jc = _bgr255(person_color(p)) if multi else dot
        dots = [(j, jc, conf[j]) for j in range(NUM_JOINTS) if ok[j]]
        _blend_skeleton(img, kp[p], lines, dots, th)
        ok = present[p]
        if multi and ok.any():
            top = kp[p, HEAD] if ok[HEAD] else kp[p][ok][np.argmin(kp[p][ok][:, 1])]
            label = f"id {ids[p]}"
            scale = max(0.4, min(h, w) / 900)
            (tw, tht), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            x, y = int(top[0] - tw / 2), int(top[1] - 3 * th - 4)
            cv2.rectangle(
                img, (x - 2, y - tht - 3), (x + tw + 2, y + 3), _bgr255(person_color(p)), -1
            )
            cv2.putText(img, label, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                        cv2.LINE_AA)  # fmt: skip
    return img


# --------------------------------------------------------------------------- 3D axes
# Horizontal extent (metres, across the view) and depth extent a panel may show so that a
# standing person still fills >= 40 % of its height (measured in tests/test_render.py).
MAX_SPAN_X_M = 3.0
MAX_SPAN_Y_M = 4.0
MIN_SPAN_M = 1.4
BOX_ZOOM = 1.35  # the people sit inside the box; its empty corners may leave the panel
FOCAL_LENGTH = 0.6  # mplot3d perspective (1 / tan(half field of view)): no empty margin


def _finite_points(*poses: np.ndarray | None) -> np.ndarray:
    pts = [np.asarray(p, dtype=np.float64).reshape(-1, 3) for p in poses if p is not None]
    pts = np.concatenate(pts) if pts else np.zeros((0, 3))
    return pts[np.isfinite(pts).all(-1)]


def _z_range(pts: np.ndarray) -> tuple[float, float]:
    """Floor (or a little below the lowest joint, at most 0.3 m) to just above the heads
    (at most 2.4 m: a stray joint must not shrink everybody)."""
    if not len(pts):
        return 0.0, 2.0
    zlow = float(np.clip(np.percentile(pts[:, 2], 1.0) - 0.05, -0.3, 0.0))
    ztop = float(np.clip(np.percentile(pts[:, 2], 99.5) + 0.15, 1.0, 2.4))
    return zlow, ztop


def axis_limits(*poses: np.ndarray | None, margin: float = 0.3) -> np.ndarray:
    """Fixed (3, 2) limits for a whole clip: tight around the people (equal scale comes from
    the box aspect), z from the floor to just above the heads."""
    pts = _finite_points(*poses)
    if len(pts) == 0:
        return np.array([[-1.0, 1.0], [-1.0, 1.0], [0.0, 2.0]])
    lo, hi = np.percentile(pts[:, :2], 0.5, axis=0), np.percentile(pts[:, :2], 99.5, axis=0)
    centre = (lo + hi) / 2
    half = np.maximum((hi - lo) / 2 + margin, MIN_SPAN_M / 2)
    zlow, ztop = _z_range(pts)
    return np.array([[centre[0] - half[0], centre[0] + half[0]],
                     [centre[1] - half[1], centre[1] + half[1]], [zlow, ztop]])  # fmt: skip


def _frame_window(
    pts: np.ndarray, margin: float, anchor: int, prev: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(centre, extent) in x/y of one frame's window and its anchor person: the window holds
    the anchor (kept while present; else the person nearest the previous centre `prev`, so the
    window moves least, or the first, main, person at the start) and every further person, in
    order, that still fits the largest readable window; None when nobody is present."""
    present = [p for p in range(len(pts)) if np.isfinite(pts[p]).all(-1).any()]
    if not present:
        return None
    if anchor not in present:
        anchor = present[0]
        if prev is not None:
            mid = [np.nanmean(pts[p][np.isfinite(pts[p]).all(-1), :2], 0) for p in present]
            anchor = present[int(np.argmin([np.hypot(*(m - prev)) for m in mid]))]
    lo = hi = None
    for p in [anchor] + [p for p in present if p != anchor]:
        person = pts[p]
        ok = np.isfinite(person).all(-1)
        if not ok.any():
            continue
        plo, phi = person[ok, :2].min(0), person[ok, :2].max(0)
        if lo is None:
            lo, hi = plo, phi
            continue
        nlo, nhi = np.minimum(lo, plo), np.maximum(hi, phi)
        span = nhi - nlo + 2 * margin
        if span[0] <= MAX_SPAN_X_M and span[1] <= MAX_SPAN_Y_M:
            lo, hi = nlo, nhi
    return (lo + hi) / 2, hi - lo + 2 * margin, anchor


def panel_limits(joints: np.ndarray, fps: float = 25.0, margin: float = 0.3) -> np.ndarray:
    """(F, 3, 2) limits per frame: the clip's fixed tight limits when they keep a person at
    >= 40 % of the panel height, else a window of at most that size that follows one person
    and whoever fits beside them (_frame_window; centre and size smoothed over
    ~1 s), so the panel is never empty while someone is lifted."""
    from hgmamba_core.world.frame import moving_average  # noqa: PLC0415

    j = np.asarray(joints, dtype=np.float64)
    F = j.shape[0]
    fixed = axis_limits(j, margin=margin)
    span = fixed[:2, 1] - fixed[:2, 0]
    if span[0] <= MAX_SPAN_X_M and span[1] <= MAX_SPAN_Y_M:
        return np.repeat(fixed[None], F, axis=0)
    pts = j.reshape(F, -1, NUM_JOINTS, 3)
    centre = np.full((F, 2), np.nan)
    ext = np.full((F, 2), np.nan)
    anchors = np.full(F, -1)
    anchor, prev = -1, None
    for i in range(F):
        win = _frame_window(pts[i], margin, anchor, prev)
        if win is not None:
            centre[i], ext[i], anchor = win
            prev = centre[i]
        anchors[i] = anchor
    have = np.isfinite(centre).all(1)
    if not have.any():
        return np.repeat(fixed[None], F, axis=0)
    idx = np.arange(F)
    for k in range(2):  # frames without anyone keep the nearest window
        centre[:, k] = np.interp(idx, idx[have], centre[have, k])
        ext[:, k] = np.interp(idx, idx[have], ext[have, k])
    anchors[anchors < 0] = anchors[have][0]  # leading frames without anyone
    win = max(3, int(round(fps)) | 1)
    # Smoothed per anchor: when the followed person leaves, the window cuts to the next one
    # rather than gliding for a second over empty floor.
    cuts = np.flatnonzero(np.diff(anchors)) + 1
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, F], strict=True):
        centre[a:b] = moving_average(centre[a:b], win)
        ext[a:b] = moving_average(ext[a:b], win)
    half = np.stack([np.clip(ext[:, 0], MIN_SPAN_M, MAX_SPAN_X_M),
                     np.clip(ext[:, 1], MIN_SPAN_M, MAX_SPAN_Y_M)], 1) / 2  # fmt: skip
    out = np.empty((F, 3, 2))
    out[:, :2, 0], out[:, :2, 1] = centre - half, centre + half
    out[:, 2] = fixed[2]
    return out


def floor_region(joints: np.ndarray, margin: float = 0.5) -> np.ndarray | None:
    """(2, 2) x/y extent of the floor the people walk on over the clip, for the grid."""
    j = np.asarray(joints, dtype=np.float64)
    feet = j[..., [3, 6], :2].reshape(-1, 2)
    feet = feet[np.isfinite(feet).all(-1)]
    if not len(feet):
        return None
    lo, hi = np.percentile(feet, 1, axis=0) - margin, np.percentile(feet, 99, axis=0) + margin
    return np.stack([lo, hi], 1)


def _grid_step(span: float) -> float:
    for step in (0.25, 0.5, 1.0, 2.0, 5.0):
        if span / step <= 12:
            return step
    return 10.0


def _apply_limits(ax, limits: np.ndarray) -> None:
    (x0, x1), (y0, y1), (z0, z1) = limits
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_zlim(z0, z1)
    ax.set_box_aspect((x1 - x0, y1 - y0, z1 - z0), zoom=BOX_ZOOM)


def floor_grid_lines(
    limits: np.ndarray, region: np.ndarray | None = None
) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Grid segments ((2, 3) each, z = 0) under the people only: `region` (default the limits)
    cut to the limits, and the closed edge (5, 3); ([], None) when nothing is left."""
    (x0, x1), (y0, y1) = region if region is not None else limits[:2]
    x0, x1 = max(x0, limits[0, 0]), min(x1, limits[0, 1])
    y0, y1 = max(y0, limits[1, 0]), min(y1, limits[1, 1])
    if x1 <= x0 or y1 <= y0:
        return [], None
    step = _grid_step(max(limits[0, 1] - limits[0, 0], limits[1, 1] - limits[1, 0]) / 2)
    xs = np.arange(np.ceil(x0 / step) * step, x1 + 1e-9, step)
    ys = np.arange(np.ceil(y0 / step) * step, y1 + 1e-9, step)
    segs = [np.array([[x, y0, 0.0], [x, y1, 0.0]]) for x in xs]
    segs += [np.array([[x0, y, 0.0], [x1, y, 0.0]]) for y in ys]
    edge = np.array([[x0, y0, 0.0], [x1, y0, 0.0], [x1, y1, 0.0], [x0, y1, 0.0], [x0, y0, 0.0]])
    return segs, edge


def draw_floor_grid(ax, limits: np.ndarray, region: np.ndarray | None = None) -> list:
    """floor_grid_lines drawn on a Matplotlib 3D axes. Returns the line artists (a moving
    window removes and redraws them)."""
    segs, edge = floor_grid_lines(limits, region)
    if edge is None:
        return []
    kw = {"color": (0.78, 0.78, 0.78), "lw": 0.7, "zorder": 0}
    lines = [ax.plot(s[:, 0], s[:, 1], s[:, 2], **kw)[0] for s in segs]
    edge_kw = {"color": (0.6, 0.6, 0.6), "lw": 0.9, "zorder": 0}
    lines.append(ax.plot(edge[:, 0], edge[:, 1], edge[:, 2], **edge_kw)[0])
    return lines


def setup_axes3d(
    ax, limits: np.ndarray, view: tuple[float, float], region: np.ndarray | None = None
) -> list:
    """Limits with equal scale, the chosen view, no box: a floor grid at z = 0 under the
    people only (`region`, default the limits). Returns the grid's artists."""
    _apply_limits(ax, limits)
    ax.view_init(elev=view[1], azim=view[0])
    ax.set_axis_off()
    try:  # matplotlib >= 3.6: no empty margin around the 3D box
        ax.set_proj_type("persp", focal_length=FOCAL_LENGTH)
    except TypeError:
        ax.set_proj_type("persp")
    return draw_floor_grid(ax, np.asarray(limits, np.float64), region)


class Skeleton3DPanel:
    """One reused Agg figure that draws the 3D skeletons of a frame into a BGR image.

    The background (grid) is cached and the skeletons blitted over it; when a frame brings new
    limits (a moving window), the background is redrawn first. `trail` > 0 draws each
    person's last `trail` pelvis positions on the floor.
    """

    def __init__(
        self, size_px: int, limits: np.ndarray, view: tuple[float, float] = DEFAULT_VIEW,
        track_ids: Iterable[int] = (0,), with_gt: bool = False, dpi: int = 100,
        region: np.ndarray | None = None, trail: int = 0,
    ) -> None:  # fmt: skip
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
        from matplotlib.figure import Figure  # noqa: PLC0415

        self.size = int(size_px)
        self.fig = Figure(figsize=(self.size / dpi, self.size / dpi), dpi=dpi, facecolor="white")
        self.canvas = FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_axes((0.0, 0.0, 1.0, 1.0), projection="3d")
        self.ax.set_facecolor("white")
        self._limits = np.asarray(limits, dtype=np.float64)
        self._region = region
        self._grid = setup_axes3d(self.ax, self._limits, view, region)
        ids = list(track_ids)
        multi = len(ids) > 1
        lw = max(1.5, self.size / 200)
        self.trail = int(trail)
        self._history: list[list[np.ndarray]] = [[] for _ in ids]
        self._persons = []
        clip = {"animated": True, "axlim_clip": True}
        for p in range(len(ids)):
            lines = [self.ax.plot([], [], [], color=c, lw=lw, solid_capstyle="round", **clip)[0]
                     for c in bone_colors(p if multi else None)]  # fmt: skip
            pc = person_color(p) if multi else (0.2, 0.2, 0.2)
            dots = self.ax.plot([], [], [], ls="", marker="o", ms=lw * 1.3, color=pc, **clip)[0]
            trail_line = None
            if self.trail > 0:
                trail_line = self.ax.plot([], [], [], color=pc, lw=lw * 0.8, alpha=0.6, **clip)[0]
            label = None
            if multi:
                label = self.ax.text(0, 0, 0, f"id {ids[p]}", color=pc, fontsize=max(7, self.size / 70),
                                     ha="center", animated=True, fontweight="bold")  # fmt: skip
            self._persons.append((lines, dots, label, trail_line))
        self._gt = None
        if with_gt:
            self._gt = [self.ax.plot([], [], [], color=GT_COLOR, lw=lw * 0.8, ls="--",
                                     **clip)[0] for _ in h36m_bones()]  # fmt: skip
            fs = max(7, self.size / 60)
            self.fig.text(0.03, 0.95, "prediction", color=bone_color(11), fontsize=fs)
            self.fig.text(0.03, 0.95 - fs / self.size * 1.9, "ground truth (dashed)",
                          color=GT_COLOR, fontsize=fs)  # fmt: skip
        self._redraw_background()

    def _redraw_background(self) -> None:
        self.canvas.draw()
        self._background = self.canvas.copy_from_bbox(self.fig.bbox)

    def set_limits(self, limits: np.ndarray) -> None:
        """Move the window (a no-op when it did not move by a millimetre)."""
        limits = np.asarray(limits, dtype=np.float64)
        if np.abs(limits - self._limits).max() < 1e-3:
            return
        self._limits = limits
        _apply_limits(self.ax, limits)
        for line in self._grid:
            line.remove()
        self._grid = draw_floor_grid(self.ax, limits, self._region)
        self._redraw_background()

    @staticmethod
    def _set_bones(lines, joints: np.ndarray) -> None:
        for line, (a, b) in zip(lines, h36m_bones(), strict=True):
            seg = joints[[a, b]]
            if np.isfinite(seg).all():
                line.set_data_3d(seg[:, 0], seg[:, 1], seg[:, 2])
                line.set_visible(True)
            else:
                line.set_visible(False)

    def draw(
        self, joints: np.ndarray, gt: np.ndarray | None = None, limits: np.ndarray | None = None
    ) -> np.ndarray:
        """joints (P, 17, 3) metres (NaN = missing), gt (17, 3) or None -> BGR (S, S, 3) uint8."""
        if limits is not None:
            self.set_limits(limits)
        joints = np.asarray(joints, dtype=np.float64).reshape(-1, NUM_JOINTS, 3)
        self.canvas.restore_region(self._background)
        artists = []
        if self._gt is not None and gt is not None:
            self._set_bones(self._gt, np.asarray(gt, dtype=np.float64))
            artists += self._gt
        for p, (lines, dots, label, trail_line) in enumerate(self._persons):
            j = joints[p] if p < len(joints) else np.full((NUM_JOINTS, 3), np.nan)
            self._set_bones(lines, j)
            ok = np.isfinite(j).all(-1)
            dots.set_data_3d(j[ok, 0], j[ok, 1], j[ok, 2])
            artists += [*lines, dots]
            if trail_line is not None:
                hist = self._history[p]
                hist.append(j[0, :2].copy())
                del hist[: max(0, len(hist) - self.trail)]
                h = np.array(hist)
                h = h[np.isfinite(h).all(-1)]
                trail_line.set_data_3d(h[:, 0], h[:, 1], np.zeros(len(h)))
                trail_line.set_visible(len(h) > 1)
                artists.append(trail_line)
            if label is not None:
                if ok.any():
                    top = j[HEAD] if ok[HEAD] else j[ok][np.argmax(j[ok][:, 2])]
                    label.set_position_3d((top[0], top[1], top[2] + 0.18))
                    (x0, x1), (y0, y1) = self._limits[0], self._limits[1]
                    label.set_visible(bool(x0 <= top[0] <= x1 and y0 <= top[1] <= y1))
                    artists.append(label)
                else:
                    label.set_visible(False)
        for a in artists:
            if a.get_visible():
                self.ax.draw_artist(a)
        rgba = np.asarray(self.canvas.buffer_rgba())
        return cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGR)

    def close(self) -> None:
        self.fig.clear()


RENDER_BACKENDS = ("opencv", "matplotlib")


def make_panel(
    backend: str, size_px: int, limits: np.ndarray, view: tuple[float, float] = DEFAULT_VIEW,
    track_ids: Iterable[int] = (0,), with_gt: bool = False, region: np.ndarray | None = None,
    trail: int = 0,
):  # fmt: skip
    """The 3D panel of `backend`: 'opencv' (panel_cv.SkeletonCanvasPanel, the default: same
    projection, ~20x faster) or 'matplotlib' (Skeleton3DPanel, Agg with blitting)."""
    if backend == "opencv":
        from hgmamba_core.render.panel_cv import SkeletonCanvasPanel  # noqa: PLC0415

        return SkeletonCanvasPanel(size_px, limits, view, track_ids, with_gt, region=region,
                                   trail=trail)  # fmt: skip
    if backend == "matplotlib":
        return Skeleton3DPanel(size_px, limits, view, track_ids, with_gt, region=region,
                               trail=trail)  # fmt: skip
    raise HGMambaError(f"unknown render backend {backend!r}: use {' or '.join(RENDER_BACKENDS)}")


# --------------------------------------------------------------------------- helpers
def parse_view(text: str) -> tuple[float, float]:
    """'AZIM,ELEV' in degrees -> (azim, elev)."""
    try:
        a, e = (float(v) for v in text.split(","))
    except ValueError:
        raise HGMambaError(
            f"--view must be AZIM,ELEV in degrees (e.g. -65,15), got {text!r}"
        ) from None
    if not (np.isfinite(a) and np.isfinite(e)):
        raise HGMambaError(f"--view values must be finite, got {text!r}")
    return a, e


def parse_frames(text: str) -> slice:
    """'A:B' (either end may be empty) -> slice(A, B)."""
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        a = int(parts[0]) if parts[0].strip() else None
        b = int(parts[1]) if parts[1].strip() else None
    except ValueError:
        raise HGMambaError(
            f"--frames must be A:B with integers (e.g. 0:100 or 50:), got {text!r}"
        ) from None
    if (a is not None and a < 0) or (b is not None and b < 0):
        raise HGMambaError(f"--frames takes non-negative frame numbers, got {text!r}")
    return slice(a, b)


def eval_to_display(*poses_mm: np.ndarray) -> list[np.ndarray]:
    """Root-relative poses in mm (F, 17, 3) from `hgmamba eval` -> metres, z up, feet on z = 0.

    The up axis is found from the first array (the mean pelvis->head direction snapped to the
    nearest axis; camera frames have it along -y) and the same rotation and floor shift are
    applied to every array so they stay comparable.
    """
    ref = np.asarray(poses_mm[0], dtype=np.float64)
    up = np.nanmean(ref[:, HEAD] - ref[:, 0], axis=0)
    if not np.isfinite(up).all():
        up = np.array([0.0, 0.0, 1.0])
    k = int(np.argmax(np.abs(up)))
    u = np.zeros(3)
    u[k] = np.sign(up[k]) or 1.0
    rot = _rotation_onto_z(u)
    out = [np.asarray(p, dtype=np.float64) @ rot.T / 1000.0 for p in poses_mm]
    floor = np.nanmin(np.concatenate([o[..., 2].reshape(-1) for o in out]))
    return [o - np.array([0.0, 0.0, floor if np.isfinite(floor) else 0.0]) for o in out]


def _rotation_onto_z(u: np.ndarray) -> np.ndarray:
    """Rotation matrix taking axis-aligned unit vector u onto +z (a quarter or half turn)."""
    z = np.array([0.0, 0.0, 1.0])
    c = float(u @ z)
    if c > 0.5:
        return np.eye(3)
    if c < -0.5:  # half turn about x
        return np.diag([1.0, -1.0, -1.0])
    axis = np.cross(u, z)
    kx = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + kx + kx @ kx  # Rodrigues with sin = 1, cos = 0


def _frame_indices(n: int, frames: slice | None) -> range:
    if frames is not None and (frames.step or 1) < 0:
        raise HGMambaError("frame ranges must go forwards")
    r = range(n)[frames] if frames is not None else range(n)
    if len(r) == 0:
        raise HGMambaError(f"--frames selects no frame of the {n} available")
    return r


def _fit_height(img: np.ndarray, height: int) -> np.ndarray:
    if img.shape[0] == height:
        return img
    w = max(2, int(round(img.shape[1] * height / img.shape[0])))
    return cv2.resize(img, (w, height), interpolation=cv2.INTER_AREA)


def _source_frames(
    frames_iter: Iterable[np.ndarray] | None, idx: range
) -> Iterator[np.ndarray | None]:
    """The input frames at the increasing indices idx, then None once the input runs out."""
    it = iter(frames_iter) if frames_iter is not None else None
    pos = 0
    for i in idx:
        frame = None
        while it is not None and pos <= i:
            frame = next(it, None)
            pos += 1
            if frame is None:
                it = None
        yield frame


def _canvas_2d(size: tuple[int, int]) -> np.ndarray:
    w, h = size
    return np.full((h, w, 3), 250, dtype=np.uint8)


def _panel_2d(frame: np.ndarray | None, pose2d: Pose2DSequence | None, i: int) -> np.ndarray | None:
    """The input frame (or a blank canvas) with the 2D skeletons of frame i drawn on it."""
    if frame is None and pose2d is None:
        return None
    img = (
        np.array(frame, dtype=np.uint8, copy=True) if frame is not None else _canvas_2d(pose2d.size)
    )
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if pose2d is not None and i < pose2d.num_frames:
        kp = pose2d.keypoints[i].astype(np.float64)
        sw, sh = pose2d.size
        if (img.shape[1], img.shape[0]) != (sw, sh) and sw > 0 and sh > 0:
            kp = kp * np.array([img.shape[1] / sw, img.shape[0] / sh])
        draw_pose2d(img, kp, pose2d.scores[i], pose2d.track_ids)
    return img


def _progress(enabled: bool):
    """A transient Rich progress bar on stderr, or a context yielding None."""
    if not enabled:
        return contextlib.nullcontext(None)
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import Progress  # noqa: PLC0415

    return Progress(transient=True, console=Console(stderr=True))


# --------------------------------------------------------------------------- public
def render_video(
    frames_iter: Iterable[np.ndarray] | None,
    pose2d: Pose2DSequence | None,
    pose3d: Pose3DSequence,
    out_path: str | os.PathLike,
    *,
    view: tuple[float, float] = DEFAULT_VIEW,
    fps: float | None = None,
    frames: slice | None = None,
    progress: bool = True,
    gt: np.ndarray | None = None,
    max_height: int = MAX_PANEL_HEIGHT,
    trail_s: float = 0.0,
    backend: str = "opencv",
) -> Path:
    """Write an H.264 mp4: [input frame + 2D skeleton | 3D skeleton], one output frame per pose
    frame selected by `frames`. `frames_iter` yields BGR frames from frame 0 (None or an
    exhausted input: blank canvas). `gt` (F, 17, 3) metres z-up is drawn dashed in the 3D plot.
    The 3D limits fit the people (panel_limits); `trail_s` seconds of pelvis trail on the floor.
    `backend` draws the 3D panel: 'opencv' (default) or 'matplotlib' (make_panel).
    """
    if backend not in RENDER_BACKENDS:
        raise HGMambaError(
            f"unknown render backend {backend!r}: use {' or '.join(RENDER_BACKENDS)}"
        )
    idx = _frame_indices(pose3d.num_frames, frames)
    rate = float(fps or pose3d.fps or (pose2d.fps if pose2d is not None else 0) or 25.0)
    if gt is not None and len(gt) < pose3d.num_frames:
        raise HGMambaError(f"ground truth has {len(gt)} frames, predictions {pose3d.num_frames}")
    sel = pose3d.joints[idx.start : idx.stop]
    if gt is not None:
        sel = np.concatenate([sel, np.asarray(gt[idx.start : idx.stop], np.float32)[:, None]], 1)
    limits = panel_limits(sel, rate)
    region = floor_region(sel)
    trail = int(round(trail_s * rate))
    height = min(max_height, 576)  # 3D-only videos; otherwise the input's height (capped)
    panel = None
    try:
        with open_video_writer(out_path, rate) as writer, _progress(progress) as bar:
            task = bar.add_task("rendering", total=len(idx)) if bar is not None else None
            for i, frame in zip(idx, _source_frames(frames_iter, idx), strict=True):
                left = _panel_2d(frame, pose2d, i)
                if panel is None:
                    if left is not None:
                        height = min(left.shape[0], max_height)
                        height -= height % 2
                    panel = make_panel(backend, height, limits[0], view, pose3d.track_ids,
                                       gt is not None, region=region, trail=trail)  # fmt: skip
                lim = limits[i - idx.start]
                right = panel.draw(pose3d.joints[i], None if gt is None else gt[i], lim)
                if left is None:
                    out = right
                else:
                    out = np.concatenate([_fit_height(left, height), right], axis=1)
                writer.write(out)
                if bar is not None:
                    bar.advance(task)
    finally:
        if panel is not None:
            panel.close()
    return Path(out_path)


def _pick_frames(n: int, count: int, frames: slice | None) -> list[int]:
    r = _frame_indices(n, frames)
    count = min(count, len(r))
    pos = np.linspace(0, len(r) - 1, count + 2)[1:-1] if len(r) > count else np.arange(len(r))
    return sorted({r[int(round(p))] for p in pos})


def render_figure_png(
    frames_iter: Iterable[np.ndarray] | None,
    pose2d: Pose2DSequence | None,
    pose3d: Pose3DSequence,
    out_path: str | os.PathLike,
    *,
    indices: list[int] | None = None,
    count: int = 4,
    frames: slice | None = None,
    view: tuple[float, float] = DEFAULT_VIEW,
    gt: np.ndarray | None = None,
    dpi: int = 150,
) -> Path:
    """A paper-style figure: one row per chosen frame, columns input | 2D | 3D (the input column
    only with frames, the 2D column only with 2D poses). `gt` adds ground truth to the 3D plot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    n = pose3d.num_frames
    rows = sorted(set(indices)) if indices else _pick_frames(n, count, frames)
    if not rows or rows[0] < 0 or rows[-1] >= n:
        raise HGMambaError(f"figure frames must lie in 0..{n - 1}, got {rows}")
    shots: dict[int, np.ndarray] = {}
    if frames_iter is not None:
        want = set(rows)
        for i, fr in enumerate(frames_iter):
            if i in want:
                shots[i] = np.array(fr, copy=True)
            if i >= rows[-1]:
                break
    cols = (["input"] if shots else []) + (["2D"] if pose2d is not None or shots else []) + ["3D"]
    both = (
        pose3d.joints
        if gt is None
        else np.concatenate([pose3d.joints, np.asarray(gt, np.float32)[:, None]], 1)
    )
    limits = panel_limits(both, pose3d.fps or 25.0)
    region = floor_region(both)
    widths = [1.0] * len(cols)  # image columns are square crops around the persons
    fig = Figure(figsize=(2.6 * sum(widths), 2.6 * len(rows)), dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(len(rows), len(cols), width_ratios=widths, wspace=0.02, hspace=0.04,
                            left=0.03, right=0.99, top=0.95, bottom=0.01)  # fmt: skip
    multi = pose3d.num_persons > 1
    for r, i in enumerate(rows):
        frame = shots.get(i)
        for c, kind in enumerate(cols):
            if kind == "3D":
                ax = fig.add_subplot(grid[r, c], projection="3d")
                setup_axes3d(ax, limits[i], view, region)
                if gt is not None:
                    _plot3d(ax, np.asarray(gt[i])[None], None, lw=1.4, color=GT_COLOR, ls="--")
                _plot3d(ax, pose3d.joints[i], pose3d.track_ids if multi else None, lw=2.0)
            else:
                ax = fig.add_subplot(grid[r, c])
                if frame is None and shots:  # the video ended before this frame: blank
                    frame = np.full_like(next(iter(shots.values())), 250)
                img = frame if kind == "input" else _panel_2d(frame, pose2d, i)
                crop = _person_crop(img.shape, pose2d, i)
                ax.imshow(cv2.cvtColor(img[crop], cv2.COLOR_BGR2RGB))
                ax.set_xticks([])
                ax.set_yticks([])
                for s in ax.spines.values():
                    s.set_visible(False)
            if r == 0:
                ax.set_title(kind if kind != "3D" or gt is None else "3D (dashed: ground truth)",
                             fontsize=10)  # fmt: skip
            if c == 0:
                fig.text(0.012, 1 - (r + 0.5) / len(rows) * 0.94 - 0.05, f"frame {i}",
                         rotation=90, va="center", fontsize=8)  # fmt: skip
    with atomic_path(out_path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, facecolor="white")
    return Path(out_path)


def _person_crop(shape: tuple[int, ...], pose2d: Pose2DSequence | None, i: int):
    """A square window (row, col slices) around the 2D persons of frame i, padded by 40%;
    the whole image when there is no 2D pose. Out-of-image parts are clipped."""
    h, w = shape[:2]
    if pose2d is None:
        return np.s_[:, :]
    kp = pose2d.keypoints[i].reshape(-1, 2).astype(np.float64)
    sw, sh = pose2d.size
    kp = kp * np.array([w / sw, h / sh])
    kp = kp[np.isfinite(kp).all(-1)]
    if len(kp) == 0:
        return np.s_[:, :]
    lo, hi = kp.min(0), kp.max(0)
    side = min(max(float((hi - lo).max()) * 1.4, 64.0), float(min(h, w)))
    cx, cy = (lo + hi) / 2
    x0 = int(np.clip(cx - side / 2, 0, w - side))
    y0 = int(np.clip(cy - side / 2, 0, h - side))
    return np.s_[y0 : y0 + int(side), x0 : x0 + int(side)]


def _plot3d(ax, joints: np.ndarray, track_ids, lw: float, color=None, ls: str = "-") -> None:
    """Static 3D skeletons for figures (P, 17, 3)."""
    joints = np.asarray(joints, dtype=np.float64).reshape(-1, NUM_JOINTS, 3)
    multi = track_ids is not None and len(joints) > 1
    for p, j in enumerate(joints):
        cols = bone_colors(p if multi else None)
        for (a, b), col in zip(h36m_bones(), cols, strict=True):
            seg = j[[a, b]]
            if np.isfinite(seg).all():
                ax.plot(seg[:, 0], seg[:, 1], seg[:, 2], color=color or col, lw=lw, ls=ls,
                        solid_capstyle="round")  # fmt: skip
        if multi and np.isfinite(j[HEAD]).all():
            ax.text(j[HEAD, 0], j[HEAD, 1], j[HEAD, 2] + 0.18, f"id {list(track_ids)[p]}",
                    color=person_color(p), ha="center", fontsize=7, fontweight="bold")  # fmt: skip
