"""Pick a torch device from a user string; never hard-code CUDA."""

from __future__ import annotations

from pathlib import Path

import torch

from hgmamba_core.errors import HGMambaError


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda when available else cpu; 'cpu', 'cuda', 'cuda:1' as given (checked)."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise HGMambaError(f"unknown device '{name}': use auto, cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise HGMambaError(
            "--device cuda asked for, but no CUDA GPU is available: use --device cpu"
        )
    return dev


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo ("avx2", "avx512f", ...); empty where unknown
    (non-Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {f for line in text.splitlines() if line.startswith("flags") for f in line.split()}


def cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX-BF16 on this CPU: without them CPU bf16 is emulated and slower than
    float32 (bench/lifter.py). Unknown (non-Linux) counts as no."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
