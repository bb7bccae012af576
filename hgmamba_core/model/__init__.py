"""The HGMamba lifter (paper sections II-III): build, count, save and load."""

from hgmamba_core.model.checkpoint import (
    load_lifter,
    load_weights,
    read_checkpoint,
    save_checkpoint,
)
from hgmamba_core.model.hgmamba import HGMamba, build_model
from hgmamba_core.model.variants import VARIANTS, VariantConfig, get_variant

__all__ = [
    "HGMamba",
    "VARIANTS",
    "VariantConfig",
    "build_model",
    "get_variant",
    "load_lifter",
    "load_weights",
    "read_checkpoint",
    "save_checkpoint",
]
