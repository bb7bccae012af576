"""The eval fast path's scan kernel (mixer_cpu.cpp): built with the system C++ compiler in a few
seconds, loaded with ctypes, called with tensor data pointers.

The torch extension of the training scan (fused.py) takes ~30 s of CPU to compile because of
the torch headers, too long for a first `hgmamba lift` to wait for; this kernel includes none
of them (plain C ABI), so lift and eval build it in the foreground on first use, with one line
on stderr saying how long it took, and run the fast path from the first run on. Builds live in
the cache (hgmamba_core.assets.cache_root()/mixer/), named by the hash of the sources, flags,
compiler and CPU, written to a temporary name and renamed; a flock (buildlock.hold_lock)
makes concurrent first runs build once. The -march=native build comes first, then a portable
one (HGMAMBA_SCAN_PORTABLE=1 forces it); HGMAMBA_NO_FUSED=1 disables the kernel. Without a
compiler, or when every build fails, `load` logs one warning line and returns None and the
lifter runs its PyTorch modules.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from hgmamba_core.assets import cache_root

HERE = Path(__file__).parent
SOURCES = (HERE / "mixer_cpu.cpp", HERE / "scan_math.h")
COMPILERS = ("c++", "g++", "clang++")
BASE_FLAGS = ("-O3", "-std=c++17", "-shared", "-fPIC", "-fvisibility=hidden",
              "-fno-trapping-math", "-fno-math-errno", "-fopenmp-simd", "-pthread")  # fmt: skip
BUILD_TIMEOUT_S = 600
SIMD_NAMES = {2: "avx512", 1: "avx2"}
ERRORS = {1: "bad sizes", 2: "a token order entry outside [0, L)", 3: "the kernel failed"}
_P = ctypes.c_void_p
_I = ctypes.c_int64


class KernelUnavailable(RuntimeError):
    """No compiler, or the build failed: the message is one line."""


@dataclass(frozen=True)
class MixerKernel:
    """A loaded build: its library, where it is, which code runs the 16-state scans."""

    lib: ctypes.CDLL
    path: Path
    simd: str  # "avx512", "avx2" or "" (the portable loops)
    openmp: bool  # its threads are torch's OpenMP team (else std::thread)
    bf16: bool = False  # its 16-state scan reads bf16 projections (AVX-512 BW + VL builds)

    def __call__(
        self, *ptrs: int, sizes: tuple[int, ...], threads: int, low: bool = False,
        proj_bf16: bool = False,
    ) -> int:  # fmt: skip
        return self.lib.hgmamba_mixer_forward(*ptrs, *sizes, threads, int(low) | 2 * proj_bf16)


def compiler() -> list[str] | None:
    """The C++ compiler command: $CXX (may hold arguments, e.g. "ccache g++"), else the first
    of c++, g++, clang++ on PATH; None when there is none."""
    cxx = os.environ.get("CXX", "").strip()
    if cxx:
        cmd = shlex.split(cxx)
        found = shutil.which(cmd[0])
        return [found, *cmd[1:]] if found else None
    for name in COMPILERS:
        found = shutil.which(name)
        if found:
            return [found]
    return None


def _cpu_tag() -> str:
    from hgmamba_core.ssm.fused import _cpu_tag as tag  # one definition of "this CPU"

    return tag()


def shares_torch_openmp() -> bool:
    """A libgomp.so.1 is already loaded in this process (Linux: torch's wheels bring theirs,
    loaded at `import torch`): a library built with -fopenmp, whose libgomp.so.1 the loader
    then resolves to that copy, runs its threads in that (torch's) team. Where none is loaded
    (macOS's libomp, a renamed libgomp, Intel OpenMP) it would bring a second runtime, so the
    kernel keeps std::thread there."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(line.endswith("/libgomp.so.1") for line in maps.splitlines())


def build_attempts(cxx: list[str]) -> list[tuple[str, list[str]]]:
    """(library file name, full flags) to try in order: tuned for this CPU, then portable, each
    first with torch's OpenMP team when the process has it. The name hashes the sources, the
    flags and the compiler, so any change makes a new build."""
    src = b"".join(p.read_bytes() for p in SOURCES)
    native = platform.machine().lower() in ("x86_64", "amd64", "aarch64", "arm64")
    variants = []
    if native and not os.environ.get("HGMAMBA_SCAN_PORTABLE"):
        variants.append((_cpu_tag(), [*BASE_FLAGS, "-march=native"]))
    variants.append(("portable", list(BASE_FLAGS)))
    if shares_torch_openmp():
        variants = [v for tag, flags in variants for v in ((f"omp_{tag}", [*flags, "-fopenmp"]),
                                                              (tag, flags))]  # fmt: skip
    out = []
    for tag, flags in variants:
        key = hashlib.sha1(src + " ".join([*cxx, *flags]).encode()).hexdigest()[:12]
        out.append((f"hgmamba_mixer_{tag}_{key}.so", flags))
    return out


def build_dir() -> Path:
    return cache_root() / "mixer"


def _compile(cxx: list[str], flags: list[str], target: Path) -> None:
    """Compile into a temporary file beside `target`, then rename (a reader never sees half)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    cmd = [*cxx, *flags, str(SOURCES[0]), "-o", str(tmp)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        if r.returncode != 0:
            lines = [ln for ln in r.stderr.splitlines() if "error" in ln] or r.stderr.splitlines()
            raise KernelUnavailable((lines or [f"exit code {r.returncode}"])[0].strip()[:200])
        os.replace(tmp, target)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise KernelUnavailable(f"{type(e).__name__}: {e}"[:200]) from None
    finally:
        tmp.unlink(missing_ok=True)


def _open(path: Path) -> MixerKernel:
    lib = ctypes.CDLL(str(path))
    fn = lib.hgmamba_mixer_forward
    fn.argtypes = [_P] * 8 + [_I] * 7 + [ctypes.c_int32, ctypes.c_int32]
    fn.restype = ctypes.c_int
    lib.hgmamba_mixer_simd.restype = ctypes.c_int
    lib.hgmamba_mixer_openmp.restype = ctypes.c_int
    lib.hgmamba_mixer_bf16.restype = ctypes.c_int
    simd = SIMD_NAMES.get(lib.hgmamba_mixer_simd(), "")
    return MixerKernel(
        lib, path, simd, bool(lib.hgmamba_mixer_openmp()), bool(lib.hgmamba_mixer_bf16())
    )


def _build(cxx: list[str], flags: list[str], target: Path, announce) -> None:
    """Compile `target` under its build lock unless it is there (or appears while we wait:
    then nothing is announced)."""
    from hgmamba_core.buildlock import hold_lock, lock_path

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise KernelUnavailable(f"cache not writable: {e}"[:200]) from None
    with hold_lock(lock_path(cache_root(), target.name), wait=True):
        if not target.is_file():  # another run may have built it while we waited
            announce()
            _compile(cxx, flags, target)


def _open_build(cxx: list[str], name: str, flags: list[str], announce) -> MixerKernel:
    target = build_dir() / name
    if not target.is_file():
        _build(cxx, flags, target, announce)
    try:
        return _open(target)
    except (OSError, AttributeError) as e:
        raise KernelUnavailable(f"cannot load {target.name}: {e}"[:200]) from None


def _load_with(cxx: list[str]) -> tuple[MixerKernel | None, str]:
    """The first build that compiles and loads, and the first error otherwise. A compile is
    announced on stderr in one line that ends with how long it took."""
    t0 = [0.0]

    def announce() -> None:
        if not t0[0]:
            print("hgmamba: compiling the CPU eval kernel once for this machine ...",
                  end="", file=sys.stderr, flush=True)  # fmt: skip
            t0[0] = time.perf_counter()

    errors = []
    for name, flags in build_attempts(cxx):
        try:
            kernel = _open_build(cxx, name, flags, announce)
        except KernelUnavailable as e:
            errors.append(str(e))
            continue
        if t0[0]:
            print(f" done in {time.perf_counter() - t0[0]:.1f} s", file=sys.stderr, flush=True)
        return kernel, ""
    if t0[0]:
        print(" failed", file=sys.stderr, flush=True)
    return None, errors[0]


@functools.cache
def load() -> MixerKernel | None:
    """The kernel, built on first use (a few seconds, one line on stderr), or None with one
    logged warning line when there is no compiler or no build works (callers then run the
    PyTorch modules). HGMAMBA_NO_FUSED=1: None."""
    if os.environ.get("HGMAMBA_NO_FUSED"):
        return None
    cxx = compiler()
    if cxx is None:
        kernel, reason = None, "no C++ compiler found ($CXX, " + ", ".join(COMPILERS) + ")"
    else:
        kernel, reason = _load_with(cxx)
    if kernel is None:
        logging.getLogger(__name__).warning(
            "hgmamba: CPU eval kernel unavailable (%s); the lifter uses its slower PyTorch path",
            reason,
        )
    return kernel


def available() -> bool:
    return load() is not None


def reads_bf16(n: int) -> bool:
    """The loaded kernel reads bf16 projections for state size n (else pass float32)."""
    kernel = load()
    return kernel is not None and kernel.bf16 and n == 16


def _check(name: str, t: torch.Tensor, dtype: torch.dtype, ndim: int) -> None:
    if t.device.type != "cpu" or t.dtype != dtype or not t.is_contiguous() or t.dim() != ndim:
        raise ValueError(
            f"mixer kernel: {name} must be a contiguous {dtype} CPU tensor with {ndim} dims, "
            f"got {t.dtype} {tuple(t.shape)} on {t.device}"
            + ("" if t.is_contiguous() else " (not contiguous)")
        )


def mixer_forward(
    proj: torch.Tensor,
    order: torch.Tensor,
    A2: torch.Tensor,
    wdt: torch.Tensor,
    dt_bias: torch.Tensor,
    dskip: torch.Tensor,
    gate: torch.Tensor,
    low_precision: bool = False,
) -> torch.Tensor:
    """All scans of one shuffle-Mamba block, (N, G, d) out (layouts: mixer_cpu.cpp; proj holds
    u and the x_proj output with their biases added). Checks shapes, dtypes and the token
    order here (ValueError, one line), then calls the kernel. low_precision: the caller goes
    on in bf16, so the AVX-512 build may use its 2^x of relative error 1e-4 (others ignore
    it). proj may be bf16 (read as such where `reads_bf16(n)`, else widened here first)."""
    kernel = load()
    if kernel is None:
        raise RuntimeError("the CPU eval kernel is not available here")
    f32 = torch.float32
    for name, t, nd in (("A2", A2, 3), ("wdt", wdt, 3), ("gate", gate, 3),
                        ("dt_bias", dt_bias, 2), ("dskip", dskip, 2)):  # fmt: skip
        _check(name, t, f32, nd)
    if proj.dtype == torch.bfloat16 and not reads_bf16(A2.shape[2]):
        proj = proj.float()
    _check("proj", proj, torch.bfloat16 if proj.dtype == torch.bfloat16 else f32, 3)
    _check("order", order, torch.int32, 2)
    g2, n_rows, ld = proj.shape
    G, L = order.shape
    _, d, n = A2.shape
    R = wdt.shape[2]
    shapes_ok = (
        g2 == 2 * G
        and A2.shape[0] == g2
        and wdt.shape[:2] == (g2, d)
        and dt_bias.shape == (g2, d)
        and dskip.shape == (g2, d)
        and gate.shape == (n_rows, G, d)
    )
    if not shapes_ok:
        raise ValueError(
            "mixer kernel: shapes do not fit (2G scans, G = order rows): proj "
            f"{tuple(proj.shape)}, order {tuple(order.shape)}, A2 {tuple(A2.shape)}, wdt "
            f"{tuple(wdt.shape)}, dt_bias {tuple(dt_bias.shape)}, dskip {tuple(dskip.shape)}, "
            f"gate {tuple(gate.shape)}"
        )
    if not (1 <= n <= 256 and R <= 16 and ld >= d + R + 2 * n and d >= 1):
        raise ValueError(
            f"mixer kernel: needs 1 <= n <= 256, R <= 16, ld >= d + R + 2n "
            f"(d={d}, n={n}, R={R}, ld={ld})"
        )
    if L < 1 or n_rows % L:
        raise ValueError(
            f"mixer kernel: {n_rows} token rows are not a whole number of {L}-token sequences"
        )
    if order.numel() and (int(order.min()) < 0 or int(order.max()) >= L):
        raise ValueError(f"mixer kernel: token order entries must lie in [0, {L})")
    out = torch.empty_like(gate)
    ptrs = (proj, order, A2, wdt, dt_bias, dskip, gate, out)
    code = kernel(
        *(t.data_ptr() for t in ptrs),
        sizes=(n_rows // L, L, G, d, R, n, ld),
        threads=torch.get_num_threads(),
        low=low_precision,
        proj_bf16=proj.dtype == torch.bfloat16,
    )
    if code:
        raise RuntimeError(f"mixer kernel: {ERRORS.get(code, f'error {code}')}")
    return out
