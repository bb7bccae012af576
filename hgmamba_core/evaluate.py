"""Evaluate a lifter on clips: exact tiling, flip test-time augmentation, per-action tables.

Predictions are root-aligned (the predicted pelvis is subtracted) and compared with the
root-relative ground truth in millimetres. Human3.6M rows are actions (averages are the mean
over actions, as the field reports); MPI-INF-3DHP rows are test sequences, counting only frames
with valid = 1 (averages over all valid frames, as P-STMO / MotionAGFormer report).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from hgmamba_core import metrics
from hgmamba_core.data.normalize import InputNorm, normalize_windows
from hgmamba_core.data.windows import ClipStore, flip_poses, tile_clip
from hgmamba_core.errors import HGMambaError
from hgmamba_core.fileio import atomic_path
from hgmamba_core.skeleton import H36M_ROOT


def _autocast(device: torch.device, amp: bool):
    if amp:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def predict_windows(
    model: nn.Module,
    windows: np.ndarray,
    flip: bool = True,
    batch_size: int = 64,
    amp: bool = False,
    norm: InputNorm | None = None,
) -> np.ndarray:
    """(W, T, 17, 3) inputs -> (W, T, 17, 3) root-aligned camera-frame metres (model in eval mode).

    With `flip`, the mirrored input is predicted too, mirrored back and averaged. `norm`: the
    checkpoint's input normalization (None: the model's meta says, else "screen").
    """
    norm = norm or InputNorm.from_meta(getattr(model, "meta", None))
    p = next(model.parameters())
    device, dtype = p.device, p.dtype
    was_training = model.training
    model.eval()
    out = np.empty(windows.shape, np.float32)
    try:
        for a in range(0, windows.shape[0], batch_size):
            x = normalize_windows(windows[a : a + batch_size], norm)
            xs = np.concatenate([x, flip_poses(x)]) if flip else x
            with _autocast(device, amp):
                y = model(torch.from_numpy(np.ascontiguousarray(xs)).to(device=device, dtype=dtype))
            y = y.float().cpu().numpy()
            if flip:
                y = 0.5 * (y[: len(x)] + flip_poses(y[len(x) :]))
            out[a : a + len(x)] = y - y[..., H36M_ROOT : H36M_ROOT + 1, :]
    finally:
        model.train(was_training)
    return out


def predict_store(
    model: nn.Module,
    store: ClipStore,
    length: int,
    frame_stride: int = 1,
    flip: bool = True,
    batch_size: int = 64,
    amp: bool = False,
    tile_every: int = 1,
    norm: InputNorm | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Predict every frame of every clip once: (pred (M, 17, 3) metres, predicted (M,) bool).

    `tile_every` > 1 keeps only every k-th test tile of each clip (a fixed subset for quick
    evaluations during training); `predicted` marks the frames that got a prediction.
    """
    rows, owned = [], []
    for c in range(store.num_clips):
        idx, own = tile_clip(int(store.lengths[c]), length, frame_stride)
        if tile_every > 1:
            idx, own = idx[::tile_every], own[::tile_every]
        rows.append(idx + store.offsets[c])
        owned.append(own)
    rows_a, own_a = np.concatenate(rows), np.concatenate(owned)
    pred_w = predict_windows(model, store.inputs[rows_a], flip, batch_size, amp, norm)
    pred = np.zeros(store.targets.shape, np.float32)
    done = np.zeros(store.targets.shape[0], bool)
    pred[rows_a[own_a]] = pred_w[own_a]
    done[rows_a[own_a]] = True
    return pred, done


@dataclass
class EvalReport:
    """Per-row metrics (rows = actions for h36m, sequences for 3dhp) and their averages."""

    dataset: str
    rows: dict[str, dict[str, float]]
    average: dict[str, float]
    frames: int
    flip: bool
    meta: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out: dict = {
            "dataset": self.dataset,
            **self.average,
            "frames": self.frames,
            "flip": self.flip,
        }
        out["per_action" if self.dataset == "h36m" else "per_sequence"] = self.rows
        out.update(self.meta)
        return out


def _frame_metrics(pred_mm: np.ndarray, gt_mm: np.ndarray) -> dict[str, np.ndarray]:
    err = np.linalg.norm(pred_mm - gt_mm, axis=-1)  # (F, 17)
    aligned = metrics.procrustes_align(pred_mm, gt_mm)
    err2 = np.linalg.norm(aligned - gt_mm, axis=-1)
    return {"p1": err.mean(axis=1), "p2": err2.mean(axis=1), "err": err}


def score(
    dataset: str,
    store: ClipStore,
    pred_m: np.ndarray,
    mask: np.ndarray | None = None,
    flip: bool = True,
) -> EvalReport:
    """Metrics of predictions (M, 17, 3) metres against the store's targets on `mask` & valid frames."""
    use = store.valid.copy()
    if mask is not None:
        use &= mask
    if not use.any():
        raise HGMambaError("no frames to evaluate")
    clip_of = np.repeat(np.arange(store.num_clips), store.lengths)
    label = np.array([store.actions[c] for c in range(store.num_clips)])[clip_of][use]
    pred_mm = pred_m[use].astype(np.float64) * 1000.0
    gt_mm = store.targets[use].astype(np.float64) * 1000.0
    fm = _frame_metrics(pred_mm, gt_mm)
    rows: dict[str, dict[str, float]] = {}
    for name in sorted(set(label.tolist())):
        sel = label == name
        if dataset == "h36m":
            rows[name] = {
                "mpjpe_mm": float(fm["p1"][sel].mean()),
                "p_mpjpe_mm": float(fm["p2"][sel].mean()),
                "frames": int(sel.sum()),
            }
        else:
            e = fm["err"][sel]
            rows[name] = {
                "pck150": float((e <= 150).mean() * 100),
                "auc": float(np.mean([(e <= t).mean() for t in metrics.AUC_THRESHOLDS]) * 100),
                "mpjpe_mm": float(e.mean()),
                "frames": int(sel.sum()),
            }
    if dataset == "h36m":
        average = {
            "mpjpe_mm": metrics.mean_over_actions({k: v["mpjpe_mm"] for k, v in rows.items()}),
            "p_mpjpe_mm": metrics.mean_over_actions({k: v["p_mpjpe_mm"] for k, v in rows.items()}),
        }
    else:
        e = fm["err"]
        average = {
            "pck150": float((e <= 150).mean() * 100),
            "auc": float(np.mean([(e <= t).mean() for t in metrics.AUC_THRESHOLDS]) * 100),
            "mpjpe_mm": float(e.mean()),
            "p_mpjpe_mm": float(fm["p2"].mean()),
        }
    return EvalReport(dataset, rows, average, int(use.sum()), flip)


def save_predictions(
    path: str | os.PathLike, store: ClipStore, pred_m: np.ndarray, mask: np.ndarray | None = None
) -> None:
    """npz with pred, gt (frames, 17, 3) mm root-relative, and each frame's sequence / action."""
    use = store.valid.copy()
    if mask is not None:
        use &= mask
    clip_of = np.repeat(np.arange(store.num_clips), store.lengths)
    frame = np.concatenate([np.arange(n) for n in store.lengths])
    names = np.array(store.names)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            pred=(pred_m[use] * 1000.0).astype(np.float32),
            gt=(store.targets[use] * 1000.0).astype(np.float32),
            sequence=names[clip_of[use]],
            action=np.array(store.actions)[clip_of[use]],
            frame=frame[use],
            sequences=names,
        )


@dataclass
class EvalRun:
    """A finished evaluation: the report plus what is needed to save predictions."""

    report: EvalReport
    store: ClipStore
    pred: np.ndarray
    predicted: np.ndarray  # (M,) bool: frames that got a prediction (all unless `every` > 1)


def evaluate_checkpoint(
    dataset: str,
    data: str | os.PathLike,
    checkpoint: str | os.PathLike,
    two_d: str = "gt",
    subjects: list[str] | None = None,
    actions: list[str] | None = None,
    flip: bool = True,
    device: str = "auto",
    batch_size: int = 64,
    every: int = 1,
) -> EvalRun:
    """Evaluate a lifter checkpoint on a test split; T and frame stride come from the checkpoint.

    `every` > 1 scores only every k-th test window of each sequence (a fixed, evenly spread
    subset: about 1/k of the frames and of the time); the report's `frames` says how many.
    """
    from hgmamba_core.data.sources import load_clips
    from hgmamba_core.device import resolve_device
    from hgmamba_core.model.checkpoint import load_lifter

    if every < 1:
        raise HGMambaError(f"--every must be >= 1, got {every}")
    dev = resolve_device(device)
    model = load_lifter(checkpoint, device=dev)
    meta = getattr(model, "meta", {}) or {}
    length = int(meta.get("frames") or model.cfg.frames)
    frame_stride = int(meta.get("frame_stride") or 1)
    store = ClipStore.from_clips(load_clips(dataset, data, "test", two_d, subjects, actions))
    # float32 (predict_store's default): reported numbers are not bf16-rounded
    pred, done = predict_store(
        model, store, length, frame_stride, flip, batch_size, tile_every=every
    )
    report = score(dataset, store, pred, done, flip=flip)
    report.meta.update(
        checkpoint=str(checkpoint), variant=model.cfg.name, two_d=two_d if dataset == "h36m" else "gt",
        frames_per_window=length, frame_stride=frame_stride,
        sequences=store.num_clips, subjects=sorted(set(store.subjects)), every=every,
        input_norm=InputNorm.from_meta(meta).mode,
    )  # fmt: skip
    return EvalRun(report, store, pred, done)
