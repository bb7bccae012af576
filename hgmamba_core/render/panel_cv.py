"""The 3D panel drawn with OpenCV: Matplotlib's mplot3d perspective reproduced in numpy.

Why: the Matplotlib panel (render.Skeleton3DPanel) costs ~20 ms a frame even with blitting;
projecting 17 joints per person and drawing anti-aliased lines with cv2 costs well under
1 ms. The projection is the one mplot3d applies for our settings (box aspect from the limits
with render.BOX_ZOOM, camera distance 10, focal length render.FOCAL_LENGTH, its 2D view window),
so both backends put every joint on the same pixel (tests/test_render.py checks it) and the
panel keeps its look: white, floor grid under the people, person colours, labels, trail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from hgmamba_core.skeleton import NUM_JOINTS, bone_color, h36m_bones

# mplot3d's constants for a 3D Axes filling its figure (matplotlib >= 3.6): the box scale that
# set_box_aspect applies, the camera distance and the 2D view window of set_top_view.
MPL_BOX_SCALE = 1.8294640721620434 * 25 / 24
MPL_DIST = 10.0
MPL_VIEW_LO, MPL_VIEW_HI = -0.95 / MPL_DIST, 0.9 / MPL_DIST
DPI = 100.0  # the Matplotlib panel's: line widths in points become pixels at this density
SHIFT = 4  # cv2 sub-pixel bits: coordinates are drawn at 1/16 px
GRID_BGR = (199, 199, 199)
EDGE_BGR = (153, 153, 153)


@dataclass(frozen=True)
class ViewProjection:
    """World metres -> panel pixels for one set of (3, 2) limits, a view and a panel size."""

    centre: np.ndarray  # (3,) centre of the limits box, metres
    scale: float  # mplot3d box units per metre (equal on all axes: equal aspect)
    eye: np.ndarray  # (3,) camera position in box units relative to the centre
    axes: np.ndarray  # (3, 3) rows: screen right, screen up, out of the screen
    focal: float
    size: int

    @classmethod
    def fit(
        cls, limits: np.ndarray, view: tuple[float, float], size: int, zoom: float, focal: float
    ) -> ViewProjection:
        lim = np.asarray(limits, dtype=np.float64)
        span = lim[:, 1] - lim[:, 0]
        azim, elev = np.deg2rad(view[0]), np.deg2rad(view[1])
        out = np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)])
        up = np.array([0.0, 0.0, -1.0 if abs(elev) > np.pi / 2 else 1.0])
        right = np.cross(up, out)
        right /= np.linalg.norm(right)
        axes = np.stack([right, np.cross(out, right), out])
        scale = MPL_BOX_SCALE * zoom / float(np.linalg.norm(span))
        return cls(lim.mean(1), scale, MPL_DIST * focal * out, axes, focal, int(size))

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) metres -> (N, 2) pixel x, y (float) and (N,) distance from the eye."""
        rel = (np.asarray(pts, dtype=np.float64) - self.centre) * self.scale - self.eye
        cam = rel @ self.axes.T
        depth = -cam[:, 2]  # > 0 in front of the eye: the box never reaches it
        xy = self.focal * cam[:, :2] / depth[:, None]
        px = (xy[:, 0] - MPL_VIEW_LO) / (MPL_VIEW_HI - MPL_VIEW_LO) * self.size
        py = (MPL_VIEW_HI - xy[:, 1]) / (MPL_VIEW_HI - MPL_VIEW_LO) * self.size
        return np.stack([px, py], 1), depth


def clip_segments(a: np.ndarray, b: np.ndarray, limits: np.ndarray):
    """Liang-Barsky: (N, 3) segments a->b cut to the limits box; returns (a', b', kept mask).

    Why: a bone reaching out of the window is cut at its edge instead of vanishing whole.
    """
    d = b - a
    t0 = np.zeros(len(a))
    t1 = np.ones(len(a))
    keep = np.isfinite(a).all(1) & np.isfinite(b).all(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in range(3):
            for p, q in ((-d[:, k], a[:, k] - limits[k, 0]), (d[:, k], limits[k, 1] - a[:, k])):
                r = q / p
                keep &= ~((p == 0) & (q < 0))
                t0 = np.where(p < 0, np.maximum(t0, r), t0)
                t1 = np.where(p > 0, np.minimum(t1, r), t1)
    keep &= t0 <= t1
    return a + t0[:, None] * d, a + t1[:, None] * d, keep


def inside(pts: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """(N,) True where a finite point lies in the limits box (mplot3d's axlim_clip)."""
    with np.errstate(invalid="ignore"):
        return ((pts >= limits[:, 0]) & (pts <= limits[:, 1])).all(1)


def _fx(p: np.ndarray) -> tuple[int, int]:
    return int(round(p[0] * (1 << SHIFT))), int(round(p[1] * (1 << SHIFT)))


def _bgr(rgb: tuple[float, float, float], over_white: float = 1.0) -> tuple[int, int, int]:
    """0..1 RGB -> 0..255 BGR; `over_white` < 1 is that opacity pre-mixed onto white."""
    c = [255.0 * (over_white * v + 1.0 - over_white) for v in rgb]
    return (int(round(c[2])), int(round(c[1])), int(round(c[0])))


def _px(points: float) -> float:
    return points * DPI / 72.0


def _dashed(img, a, b, color, width: float, dash: float, gap: float) -> None:
    """A dashed anti-aliased line (Matplotlib's '--'): butt-capped dashes of `dash` px every
    dash + gap px, `width` px wide, each a filled quad (cv2 lines have round caps)."""
    d = b - a
    n = float(np.hypot(*d))
    if n < 1e-6:
        return
    u = d / n
    side = np.array([-u[1], u[0]]) * width / 2
    for s in np.arange(0.0, n, dash + gap):
        p, q = a + u * s, a + u * min(s + dash, n)
        quad = np.array([p - side, q - side, q + side, p + side]) * (1 << SHIFT)
        cv2.fillConvexPoly(img, np.round(quad).astype(np.int32), color, cv2.LINE_AA, SHIFT)


def _label_style(label: str, px_size: float, bold: bool = True) -> tuple[str, float, int, int]:
    """(label, Hershey scale, thickness, width px) for text of em size `px_size` pixels."""
    # Hershey Simplex at these scales is as wide as DejaVu Sans Bold / DejaVu Sans.
    scale = max(0.3, px_size / (23.0 if bold else 29.0))
    thick = 2 if bold and px_size >= 10 else 1
    (tw, _), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    return label, scale, thick, tw


def _text(img, label: str, x: float, y: float, color, px_size: float, bold: bool, centre: bool):
    """Hershey text with its baseline at y, `px_size` the font's em size in pixels."""
    _, scale, thick, tw = _label_style(label, px_size, bold)
    org = (int(round(x - tw / 2 if centre else x)), int(round(y)))
    cv2.putText(img, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick, cv2.LINE_AA)


class SkeletonCanvasPanel:
    """The 3D skeletons of a frame drawn into a BGR image with OpenCV (render_video's default).

    Same interface as render.Skeleton3DPanel. The background (white, floor grid) is cached
    per limits; per frame the bones are depth-sorted (far first) and drawn anti-aliased.
    """

    def __init__(
        self, size_px: int, limits: np.ndarray, view: tuple[float, float] | None = None,
        track_ids: Iterable[int] = (0,), with_gt: bool = False,
        region: np.ndarray | None = None, trail: int = 0,
    ) -> None:  # fmt: skip
        from hgmamba_core import render as r  # noqa: PLC0415 - render imports this module lazily

        self._r = r
        self.size = int(size_px)
        self.view = tuple(view) if view is not None else r.DEFAULT_VIEW
        ids = list(track_ids)
        self.ids = ids
        multi = len(ids) > 1
        self.lw = max(1.5, self.size / 200)  # points, as the Matplotlib panel
        self.thick = max(1, int(round(_px(self.lw))))
        self.dot_r = _px(self.lw * 1.3 + 1.0) / 2  # marker size + its 1 pt edge, as a radius
        self.bones = np.array(h36m_bones())
        self.colors = [
            [_bgr(c) for c in r.bone_colors(p if multi else None)] for p in range(len(ids))
        ]
        self.dot_colors = [
            _bgr(r.person_color(p) if multi else (0.2, 0.2, 0.2)) for p in range(len(ids))
        ]
        self.pcolors = [_bgr(r.person_color(p)) for p in range(len(ids))]
        self.multi = multi
        self.with_gt = with_gt
        self.trail = int(trail)
        self._history: list[list[np.ndarray]] = [[] for _ in ids]
        self._region = region
        self._labels = [_label_style(f"id {i}", _px(max(7, self.size / 70))) for i in ids]
        self._limits = np.asarray(limits, dtype=np.float64)
        self._set_background()

    # ------------------------------------------------------------------ background
    def _set_background(self) -> None:
        r = self._r
        self.proj = ViewProjection.fit(
            self._limits, self.view, self.size, r.BOX_ZOOM, r.FOCAL_LENGTH
        )
        img = np.full((self.size, self.size, 3), 255, np.uint8)
        segs, edge = r.floor_grid_lines(self._limits, self._region)
        if segs:
            ends, _ = self._fixed(np.concatenate(segs))
            for a, b in zip(ends[0::2].tolist(), ends[1::2].tolist(), strict=True):
                cv2.line(img, a, b, GRID_BGR, 1, cv2.LINE_AA, SHIFT)
        if edge is not None:
            poly = self._fixed(edge)[0].astype(np.int32)
            cv2.polylines(
                img, [poly], True, EDGE_BGR, max(1, int(round(_px(0.9)))), cv2.LINE_AA, SHIFT
            )
        if self.with_gt:
            fs = _px(max(7, self.size / 60))
            blue = _bgr(bone_color(11))
            _text(img, "prediction", 0.03 * self.size, 0.05 * self.size, blue, fs, False, False)
            y = (0.05 + max(7, self.size / 60) / self.size * 1.9) * self.size
            _text(
                img,
                "ground truth (dashed)",
                0.03 * self.size,
                y,
                _bgr(r.GT_COLOR),
                fs,
                False,
                False,
            )
        self._background = img

    def set_limits(self, limits: np.ndarray) -> None:
        """Move the window (a no-op when it did not move by a millimetre)."""
        limits = np.asarray(limits, dtype=np.float64)
        if np.abs(limits - self._limits).max() < 1e-3:
            return
        self._limits = limits
        self._set_background()

    # ------------------------------------------------------------------ per frame
    def _fixed(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) metres -> (N, 2) int64 sub-pixel coordinates (0 where not finite), depth."""
        xy, depth = self.proj.project(pts)
        return np.round(np.nan_to_num(xy) * (1 << SHIFT)).astype(np.int64), depth

    def _bones_fixed(self, joints: np.ndarray):
        """Every bone of (n, 17, 3) joints cut to the limits: (n*B, 2) start and end points,
        mean depth and a kept mask, bones of person p at rows p*B .. p*B + B - 1."""
        a, b, keep = clip_segments(joints[:, self.bones[:, 0]].reshape(-1, 3),
                                   joints[:, self.bones[:, 1]].reshape(-1, 3), self._limits)  # fmt: skip
        xy, depth = self._fixed(np.concatenate([a, b]))
        m = len(a)
        return xy[:m], xy[m:], (depth[:m] + depth[m:]) / 2, keep

    def _draw_gt(self, img: np.ndarray, gt: np.ndarray) -> None:
        g = np.asarray(gt, dtype=np.float64).reshape(1, NUM_JOINTS, 3)
        a, b, keep = clip_segments(g[0, self.bones[:, 0]], g[0, self.bones[:, 1]], self._limits)
        xy, _ = self.proj.project(np.concatenate([a, b]))
        lw = self.lw * 0.8
        color = _bgr(self._r.GT_COLOR)
        dash, gap = 3.7 * lw, 1.6 * lw  # px, as measured on the Matplotlib panel's '--'

        for k in np.flatnonzero(keep):
            _dashed(img, xy[k], xy[len(a) + k], color, _px(lw), dash, gap)

    def _draw_trail(self, img: np.ndarray, p: int, pelvis: np.ndarray) -> None:
        hist = self._history[p]
        hist.append(pelvis[:2].copy())
        del hist[: max(0, len(hist) - self.trail)]
        h = np.array(hist)
        h = h[np.isfinite(h).all(-1)]
        h3 = np.c_[h, np.zeros(len(h))]
        h3 = h3[inside(h3, self._limits)]
        if len(h3) < 2:
            return
        poly, _ = self._fixed(h3)
        th = max(1, int(round(_px(self.lw * 0.8))))
        color = _bgr(self._r.person_color(p), over_white=0.6)
        cv2.polylines(img, [poly.astype(np.int32)], False, color, th, cv2.LINE_AA, SHIFT)

    def _draw_label(self, img: np.ndarray, p: int, j: np.ndarray) -> None:
        ok = np.isfinite(j).all(-1)
        if not ok.any():
            return
        top = j[self._r.HEAD] if ok[self._r.HEAD] else j[ok][np.argmax(j[ok][:, 2])]
        (x0, x1), (y0, y1) = self._limits[0], self._limits[1]
        if not (x0 <= top[0] <= x1 and y0 <= top[1] <= y1):
            return
        (q,), _ = self.proj.project((top + [0.0, 0.0, 0.18])[None])
        label, scale, thick, width = self._labels[p]
        org = (int(round(q[0] - width / 2)), int(round(q[1])))
        cv2.putText(img, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, self.pcolors[p], thick,
                    cv2.LINE_AA)  # fmt: skip

    def draw(
        self, joints: np.ndarray, gt: np.ndarray | None = None, limits: np.ndarray | None = None
    ) -> np.ndarray:
        """joints (P, 17, 3) metres (NaN = missing), gt (17, 3) or None -> BGR (S, S, 3) uint8.

        People are drawn far to near, and each person's bones far to near (painter's order)."""
        if limits is not None:
            self.set_limits(limits)
        joints = np.asarray(joints, dtype=np.float64).reshape(-1, NUM_JOINTS, 3)
        n = min(len(joints), len(self.ids))
        joints = joints[:n]
        img = self._background.copy()
        if gt is not None and self.with_gt:
            self._draw_gt(img, gt)
        if self.trail > 0:
            for p in range(n):
                self._draw_trail(img, p, joints[p, 0])
        pa, pb, bdepth, keep = self._bones_fixed(joints)
        jxy, jdepth = self._fixed(joints.reshape(-1, 3))
        jok = inside(joints.reshape(-1, 3), self._limits)
        nb, nj = len(self.bones), NUM_JOINTS
        person_depth = [float(jdepth[p * nj : (p + 1) * nj][jok[p * nj : (p + 1) * nj]].mean())
                        if jok[p * nj : (p + 1) * nj].any() else 0.0 for p in range(n)]  # fmt: skip
        order = sorted(range(n), key=lambda p: -person_depth[p])
        rad = int(round(self.dot_r * (1 << SHIFT)))
        pa, pb, jxy = pa.tolist(), pb.tolist(), jxy.tolist()
        for p in order:
            rows = p * nb + np.argsort(-bdepth[p * nb : (p + 1) * nb])
            colors = self.colors[p]
            for k in rows[keep[rows]].tolist():
                cv2.line(img, pa[k], pb[k], colors[k - p * nb], self.thick, cv2.LINE_AA, SHIFT)
            for k in np.flatnonzero(jok[p * nj : (p + 1) * nj]).tolist():
                cv2.circle(img, jxy[p * nj + k], rad, self.dot_colors[p], -1, cv2.LINE_AA, SHIFT)
        if self.multi:
            for p in order:
                self._draw_label(img, p, joints[p])
        return img

    def close(self) -> None:
        """Nothing to free (same interface as the Matplotlib panel)."""
