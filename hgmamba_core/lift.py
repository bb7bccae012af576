"""Lift long 2D tracks to 3D with a T-frame lifter: overlapping windows blended without seams.

A lifter sees exactly T frames at a time. A track of any length is cut into windows of T frames
with a stride of about 3T/4 (`default_stride`); every frame's 3D pose is the weighted mean of
the windows covering it, with weights that fade towards each window's edges (a Hann window with
a floor), so no frame depends on a single window edge and there are no seams. Tracks shorter
than T are padded by repeating their first/last frames. Frames where the person is absent (NaN)
split the track into segments that are lifted separately; the output keeps NaN there. Optional
flip test-time augmentation lifts the mirrored track too and averages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from hgmamba_core.data.normalize import InputNorm, normalize_windows
from hgmamba_core.skeleton import H36M_ROOT, NUM_JOINTS, flip_permutation


def blend_weights(T: int, floor: float = 0.05) -> np.ndarray:
    """Per-frame weights (T,) of one window: a Hann bump lifted by `floor` so edges never get 0.

    The floor keeps the first/last frames of a track (covered by one window edge only) defined.
    """
    if T == 1:
        return np.ones(1, dtype=np.float64)
    hann = np.sin(np.pi * (np.arange(T) + 0.5) / T) ** 2
    return floor + (1.0 - floor) * hann


def default_stride(T: int) -> int:
    """3/4 of T: on real S9/S11 tracks (bench/lift_windows.py) it lifts 0.67x the windows of
    T // 2 for +0.16-0.22 mm P1 and +0.1 mm P2; stride T (no overlap) costs ~1 mm P1 and ~15 %
    more velocity error, the seams."""
    return max(1, round(0.75 * T))


def window_starts(length: int, T: int, stride: int) -> np.ndarray:
    """Start indices of T-frame windows covering frames [0, length); length >= T.

    Regular steps of `stride`, plus a last window flush with the end so every frame is covered.
    """
    if length < T:
        raise ValueError(f"length {length} < T {T}: pad first")
    stride = max(1, int(stride))
    starts = list(range(0, length - T + 1, stride))
    if starts[-1] != length - T:
        starts.append(length - T)
    return np.asarray(starts, dtype=np.int64)


def pad_to(seq: np.ndarray, T: int) -> tuple[np.ndarray, int]:
    """Edge-replicate a (L, ...) sequence to at least T frames, centred; returns (padded, offset)."""
    L = seq.shape[0]
    if L >= T:
        return seq, 0
    before = (T - L) // 2
    after = T - L - before
    idx = np.concatenate([np.zeros(before, np.int64), np.arange(L), np.full(after, L - 1)])
    return seq[idx], before


def valid_segments(track: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) runs of frames whose 17 x, y values are all finite."""
    ok = np.isfinite(track[..., :2]).all(axis=(-1, -2))
    edges = np.diff(np.concatenate([[0], ok.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def flip_xy_conf(x: np.ndarray) -> np.ndarray:
    """Mirror normalized 2D input (..., 17, 3): swap left/right joints, negate x."""
    out = x[..., flip_permutation(), :].copy()
    out[..., 0] *= -1.0
    return out


def flip_3d(x: torch.Tensor) -> torch.Tensor:
    """Mirror 3D camera-frame output (..., 17, 3) back: swap left/right joints, negate x."""
    perm = torch.as_tensor(flip_permutation(), device=x.device)
    out = x.index_select(-2, perm).clone()
    out[..., 0] = -out[..., 0]
    return out


@dataclass
class _Window:
    track: int  # index into the list of tracks
    frame0: int  # first frame of the window in the padded segment, in track frames
    seg_start: int  # segment start in track frames
    seg_len: int  # real (unpadded) segment length
    offset: int  # padding before the segment (short segments only)


@dataclass
class Lifter:
    """A loaded lifter plus how to slide it over long tracks.

    `model` maps (B, T, 17, 3) normalized x, y, confidence to (B, T, 17, 3) camera-frame,
    root-relative metres. Inputs follow the model's device and dtype. Each window is normalized
    as the checkpoint records (`input_norm`), the same function eval and training apply.
    """

    model: torch.nn.Module
    T: int
    variant: str = ""
    checkpoint: str = ""
    stride: int | None = None  # default: default_stride(T)
    batch_size: int = 64
    flip: bool = True
    floor: float = 0.05
    input_norm: InputNorm | None = None  # None: what the checkpoint's meta records

    def resolved_norm(self) -> InputNorm:
        """The window normalization the lifter was trained with (data/normalize.py)."""
        return self.input_norm or InputNorm.from_meta(getattr(self.model, "meta", None))

    @property
    def device(self) -> torch.device:
        p = next(self.model.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        p = next(self.model.parameters(), None)
        return p.dtype if p is not None and p.is_floating_point() else torch.float32

    @property
    def window_stride(self) -> int:
        """Frames between window starts: `stride`, else `default_stride(T)`."""
        return int(self.stride or default_stride(int(self.T)))

    def lift_track(self, xy_conf: np.ndarray) -> np.ndarray:
        """(F, 17, 3) normalized x, y, conf -> (F, 17, 3) camera-frame root-relative metres.

        Frames with any non-finite x/y are treated as absent and come back as NaN.
        """
        return self.lift_tracks([xy_conf])[0]

    def lift_tracks(
        self,
        tracks: list[np.ndarray],
        progress: Callable[[int, int], None] | None = None,
    ) -> list[np.ndarray]:
        """Lift several tracks, batching windows across all of them."""
        T = int(self.T)
        stride = self.window_stride
        w = blend_weights(T, self.floor)
        prepared, windows = [], []
        for k, tr in enumerate(tracks):
            tr = np.asarray(tr, dtype=np.float32)
            if tr.ndim != 3 or tr.shape[1:] != (NUM_JOINTS, 3):
                raise ValueError(f"track must be (frames, 17, 3), got {tr.shape}")
            tr = tr.copy()
            conf = tr[..., 2]
            conf[~np.isfinite(conf)] = 0.0  # unknown confidence: present but untrusted
            prepared.append(tr)
            for a, b in valid_segments(tr):
                L = b - a
                padded_len = max(L, T)
                offset = (T - L) // 2 if L < T else 0
                for s in window_starts(padded_len, T, stride):
                    windows.append(_Window(k, int(s), a, L, offset))

        acc = [np.zeros((t.shape[0], NUM_JOINTS, 3), np.float64) for t in prepared]
        wsum = [np.zeros(t.shape[0], np.float64) for t in prepared]
        done = 0
        for chunk in _chunks(windows, max(1, int(self.batch_size))):
            batch = np.stack([self._window_input(prepared[c.track], c, T) for c in chunk])
            pred = self._predict(batch)
            for c, p in zip(chunk, pred, strict=True):
                # frames of this window inside the real segment
                lo = max(c.frame0, c.offset)
                hi = min(c.frame0 + T, c.offset + c.seg_len)
                if hi <= lo:
                    continue
                rows = slice(c.seg_start + lo - c.offset, c.seg_start + hi - c.offset)
                ww = w[lo - c.frame0 : hi - c.frame0]
                acc[c.track][rows] += p[lo - c.frame0 : hi - c.frame0] * ww[:, None, None]
                wsum[c.track][rows] += ww
            done += len(chunk)
            if progress is not None:
                progress(done, len(windows))

        out = []
        for a, s in zip(acc, wsum, strict=True):
            res = np.full(a.shape, np.nan, np.float32)
            have = s > 0
            res[have] = (a[have] / s[have, None, None]).astype(np.float32)
            res[have] -= res[have][:, H36M_ROOT : H36M_ROOT + 1]
            out.append(res)
        return out

    def _window_input(self, track: np.ndarray, c: _Window, T: int) -> np.ndarray:
        seg = track[c.seg_start : c.seg_start + c.seg_len]
        padded, _ = pad_to(seg, T)
        return padded[c.frame0 : c.frame0 + T]

    def _predict(self, batch: np.ndarray) -> np.ndarray:
        """(B, T, 17, 3) inputs -> (B, T, 17, 3) predictions, flip-averaged when enabled."""
        x = batch = normalize_windows(batch, self.resolved_norm())
        if self.flip:
            x = np.concatenate([batch, flip_xy_conf(batch)], axis=0)
        self.model.eval()
        with torch.inference_mode():
            xt = torch.from_numpy(np.ascontiguousarray(x)).to(self.device, self.dtype)
            y = self.model(xt)
            if self.flip:
                n = batch.shape[0]
                y = 0.5 * (y[:n] + flip_3d(y[n:]))
            return y.float().cpu().numpy()


def _chunks(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
