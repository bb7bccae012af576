"""Lifter checkpoints: {format, variant config, state_dict, meta}, saved atomically, loaded with
torch.load(weights_only=True) so a file carrying pickled code is refused, not run.

Extra top-level keys (e.g. optimizer state of a resumable 'last' file) are allowed and kept.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hgmamba_core.errors import HGMambaError
from hgmamba_core.fileio import atomic_path
from hgmamba_core.model.hgmamba import HGMamba
from hgmamba_core.model.variants import VariantConfig

FORMAT = "hgmamba-lifter"
FORMAT_VERSION = 1


def checkpoint_dict(model: HGMamba, meta: dict | None = None, **extra: Any) -> dict:
    """The dict `save_checkpoint` writes; `extra` adds top-level keys (e.g. optimizer=...)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.cfg.to_dict(),
        "state_dict": state,
        "meta": dict(meta or {}),
        **extra,
    }


def save_checkpoint(
    path: str | os.PathLike, model: HGMamba, meta: dict | None = None, **extra: Any
) -> Path:
    """Write model + meta (version, data, metrics, ...) to `path` atomically; returns the path."""
    with atomic_path(path) as tmp:
        torch.save(checkpoint_dict(model, meta, **extra), tmp)
    return Path(path)


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """The checkpoint dict, validated; one-line HGMambaError for missing/corrupt/unsafe files."""
    p = Path(path)
    if not p.is_file():
        raise HGMambaError(f"checkpoint not found: {p}")
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsupported object"
        raise HGMambaError(
            f"refusing checkpoint {p}: it holds pickled objects other than tensors and plain"
            f" data ({first[:120]}); only files written by 'hgmamba train' load"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        msg = " ".join(str(e).split())[:160]
        raise HGMambaError(
            f"cannot read checkpoint {p}: corrupt or not a torch file ({msg})"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise HGMambaError(
            f"{p} is not an hgmamba lifter checkpoint (no '{FORMAT}' format tag);"
            " train one with 'hgmamba train'"
        )
    version = ckpt.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise HGMambaError(
            f"checkpoint {p} has format version {version!r}, this hgmamba reads up to"
            f" {FORMAT_VERSION}: upgrade hgmamba"
        )
    for key in ("config", "state_dict"):
        if not isinstance(ckpt.get(key), dict):
            raise HGMambaError(f"checkpoint {p} is incomplete: its '{key}' entry is missing")
    return ckpt


def config_of(ckpt: dict, path: str | os.PathLike = "checkpoint") -> VariantConfig:
    try:
        return VariantConfig.from_dict(ckpt["config"])
    except TypeError as e:
        raise HGMambaError(f"{path}: unreadable variant config ({e})") from None


def load_state(model: nn.Module, state: dict, source: str, source_cfg: VariantConfig) -> None:
    """Load `state` into `model`, turning any key/shape mismatch into one line naming both."""
    own = model.state_dict()
    cfg = model.cfg
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or bad:
        what = (
            f"shape of {bad[0]} {tuple(state[bad[0]].shape)} vs {tuple(own[bad[0]].shape)}"
            if bad
            else f"missing {missing[:1]}, unexpected {unexpected[:1]}"
        )
        raise HGMambaError(
            f"{source} holds an HGMamba-{source_cfg.name} (N={source_cfg.depth},"
            f" D={source_cfg.dim}, T={source_cfg.frames}) that does not fit the HGMamba-{cfg.name}"
            f" model (N={cfg.depth}, D={cfg.dim}, T={cfg.frames}): {what}"
        )
    model.load_state_dict(state)


def load_weights(model: HGMamba, path: str | os.PathLike) -> dict:
    """Load a checkpoint's weights into an existing `model` (resume, fine-tune); returns the
    checkpoint dict (meta, optimizer state, ...). A different variant is a one-line error."""
    ckpt = read_checkpoint(path)
    load_state(model, ckpt["state_dict"], str(path), config_of(ckpt, path))
    return ckpt


def load_lifter(
    path: str | os.PathLike, device: str | torch.device = "cpu", variant: str | None = None
) -> HGMamba:
    """A trained lifter in eval mode on `device`. `variant`, when given, must match the file's."""
    ckpt = read_checkpoint(path)
    cfg = config_of(ckpt, path)
    if variant is not None and variant.lower() != cfg.name:
        raise HGMambaError(
            f"checkpoint {path} holds HGMamba-{cfg.name}, but variant '{variant}' was asked for"
        )
    model = HGMamba(cfg)
    load_state(model, ckpt["state_dict"], str(path), cfg)
    model.meta = dict(ckpt.get("meta") or {})
    return model.to(device).eval()
