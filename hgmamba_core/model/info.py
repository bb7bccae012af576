"""What `hgmamba info` reports about each variant: size, cost, speed here, shipped weights."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from hgmamba_core.model.complexity import count_macs, count_params
from hgmamba_core.model.hgmamba import HGMamba, build_model
from hgmamba_core.model.variants import PAPER_COUNTS, get_variant


@dataclass
class VariantInfo:
    name: str
    depth: int
    dim: int
    frames: int
    params: int
    macs: int  # matmul MACs of one clip of `frames` frames: what Table I counts
    scan_macs: int  # the selective scans' MACs, analytic, reported beside `macs` (not in it)
    paper_params: float
    paper_macs: float
    weights: Path | None  # shipped trained weights, if any
    weights_name: str
    fps: float | None = None  # measured frames/s (eval, batched windows), if asked
    scan_backend: str = ""

    def to_json(self) -> dict:
        d = {
            "params": self.params,
            "macs": self.macs,
            "T": self.frames,
            "N": self.depth,
            "D": self.dim,
            "scan_macs": self.scan_macs,
            "paper_params": _finite_or_none(self.paper_params),
            "paper_macs": _finite_or_none(self.paper_macs),
            "weights": str(self.weights) if self.weights else None,
        }
        if self.fps is not None:
            d["fps"] = round(self.fps, 1)
            d["scan_backend"] = self.scan_backend
        return d


def _finite_or_none(x: float) -> int | None:
    """Paper counts as ints for JSON; None for variants that are not in the paper."""
    return None if math.isnan(x) else int(x)


def measure_fps(
    model: HGMamba,
    device: torch.device | str = "cpu",
    batch: int | None = None,
    seconds: float = 2.0,
) -> float:
    """Frames/s of eval-mode forward passes over batches of full windows (after one warm-up).

    The default batch holds about 432 frames (16 XS windows, 5 S windows, 1 B window), so every
    variant's measurement stays short.
    """
    model = model.to(device).eval()
    batch = batch or max(1, 432 // model.cfg.frames)
    x = torch.randn(batch, model.cfg.frames, model.cfg.num_joints, model.cfg.dim_in, device=device)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    with torch.inference_mode():
        model(x)
        sync()
        n, start = 0, time.perf_counter()
        while True:
            model(x)
            sync()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return n * batch * model.cfg.frames / elapsed


def variant_info(
    name: str, fps: bool = False, seconds: float = 2.0, device: str = "cpu"
) -> VariantInfo:
    """Counts for one variant; with `fps`, also a short speed measurement on `device`."""
    from hgmamba_core.pipeline import default_checkpoint_name, find_asset
    from hgmamba_core.ssm import auto_backend

    cfg = get_variant(name)
    with torch.device("meta"):
        shapes_only = build_model(cfg)
    macs = count_macs(shapes_only)
    weights_name = default_checkpoint_name(cfg.name)
    info = VariantInfo(
        name=cfg.name,
        depth=cfg.depth,
        dim=cfg.dim,
        frames=cfg.frames,
        params=count_params(shapes_only),
        macs=macs.matmul,
        scan_macs=macs.scan,
        paper_params=PAPER_COUNTS.get(cfg.name, {}).get("params", float("nan")),
        paper_macs=PAPER_COUNTS.get(cfg.name, {}).get("macs", float("nan")),
        weights=find_asset(Path("weights") / weights_name),
        weights_name=weights_name,
    )
    if fps:
        info.fps = measure_fps(build_model(cfg), device, seconds=seconds)
        info.scan_backend = auto_backend(device)
    return info
