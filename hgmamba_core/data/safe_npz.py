"""Read community .npz files that hold pickled dicts, without running arbitrary pickles.

VideoPose3D and P-STMO store nested dicts of numpy arrays as 0-d object arrays inside .npz.
`np.load(..., allow_pickle=True)` would execute any pickle; here the file must be a zip of .npy
entries, and object entries are unpickled by an Unpickler that resolves only the few numpy
globals an array pickle needs. Plain dicts, lists, tuples, strings and numbers need no globals.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from hgmamba_core.errors import HGMambaError

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # bytes in protocol-2 pickles
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read_entry(raw: bytes, name: str) -> Any:
    f = io.BytesIO(raw)
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        _shape, _fortran, dtype = np.lib.format.read_array_header_1_0(f)
    else:
        _shape, _fortran, dtype = np.lib.format.read_array_header_2_0(f)
    if not dtype.hasobject:
        return np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
    arr = _NumpyOnlyUnpickler(f).load()
    if not isinstance(arr, np.ndarray):
        raise HGMambaError(f"entry '{name}' is not a numpy array")
    return arr.item() if arr.shape == () else arr


def load_npz_dicts(path: str | os.PathLike) -> dict[str, Any]:
    """All entries of an .npz, object entries unpickled safely (0-d arrays become their item)."""
    p = Path(path)
    if not p.is_file():
        raise HGMambaError(f"file not found: {p}")
    if not zipfile.is_zipfile(p):
        raise HGMambaError(f"{p} is not an .npz file (not a zip archive)")
    out: dict[str, Any] = {}
    try:
        with zipfile.ZipFile(p) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    raise HGMambaError(f"{p}: unexpected entry '{info.filename}' (not .npy)")
                out[info.filename[:-4]] = _read_entry(zf.read(info), info.filename)
    except (pickle.UnpicklingError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise HGMambaError(f"cannot read {p}: {e}") from None
    return out


def require_array(
    x: Any, where: str, ndim: int | None = None, last: int | None = None
) -> np.ndarray:
    """Check that an unpickled value is a numeric numpy array of the expected rank / last dim."""
    if not isinstance(x, np.ndarray) or x.dtype.hasobject or x.dtype.kind not in "biuf":
        raise HGMambaError(f"{where}: expected a numeric numpy array, got {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        raise HGMambaError(f"{where}: expected {ndim} dimensions, got shape {x.shape}")
    if last is not None and x.shape[-1] != last:
        raise HGMambaError(f"{where}: expected last dimension {last}, got shape {x.shape}")
    return x


def require_dict(x: Any, where: str) -> dict:
    if not isinstance(x, dict):
        raise HGMambaError(f"{where}: expected a dict, got {type(x).__name__}")
    return x
