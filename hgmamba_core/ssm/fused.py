"""The fused CPU selective scan for training: a C++/OpenMP torch extension built on first use,
with autograd (the eval fast path's kernel is mixer_kernel.py, which needs no torch headers).

The kernel walks L once per (batch row, block of 16 channels) with the state in local memory
and SIMD lanes over the channels, and walks back once for the gradient (recomputing states
chunk by chunk from checkpoints the forward saved), so it pays none of the per-step kernel
launches and state round-trips of a PyTorch loop. It is compiled with torch.utils.cpp_extension the first time
it is needed, into a folder named by the source's content hash and this CPU
($HGMAMBA_CACHE or ~/.cache/hgmamba/scan/<name>/, holding its own copy of the source): every
checkout and every run with the same kernel source reuses one build (a build keyed by the
checkout's path was redone for each new checkout). torch's file lock serializes concurrent
first builds, and the first build says so on stderr in one line. If it cannot be built,
`load_extension` warns once and returns None, and callers fall back to the PyTorch paths (also
forced by HGMAMBA_NO_FUSED=1).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import platform
import shlex
import shutil
import sys
from pathlib import Path

import torch

from hgmamba_core.assets import cache_root

SOURCE = Path(__file__).with_name("scan_cpu.cpp")
HEADERS = (Path(__file__).with_name("scan_math.h"),)  # shared with mixer_cpu.cpp


def _cpu_tag() -> str:
    """Short id of this CPU's instruction set, so a -march=native build is never reused elsewhere."""
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    flags = line
                    break
    except OSError:
        pass
    key = f"{platform.machine()}|{flags}"
    return hashlib.sha1(key.encode()).hexdigest()[:8]


def _build_attempts() -> list[tuple[str, list[str]]]:
    """(extension name, C++ flags) to try in order: tuned for this CPU, then portable."""
    base = ["-O3", "-fopenmp", "-fno-trapping-math", "-fno-math-errno"]
    src = hashlib.sha1(b"".join(p.read_bytes() for p in (SOURCE, *HEADERS))).hexdigest()[:10]
    attempts = []
    native = platform.machine().lower() in ("x86_64", "amd64", "aarch64", "arm64")
    if native and not os.environ.get("HGMAMBA_SCAN_PORTABLE"):  # 1: skip the -march=native build
        attempts.append((f"hgmamba_scan_{_cpu_tag()}_{src}", [*base, "-march=native"]))
    attempts.append((f"hgmamba_scan_portable_{src}", base))
    return attempts


def cache_dir() -> Path:
    """Where the kernel builds live (hgmamba_core.assets.cache_root: $HGMAMBA_CACHE, ...)."""
    return cache_root()


def _build_dir(name: str) -> tuple[Path, Path, bool]:
    """(build folder, its copy of the source and headers, whether the library is built there)."""
    d = cache_dir() / "scan" / name
    d.mkdir(parents=True, exist_ok=True)
    for f in (*HEADERS, SOURCE):
        copy = d / f.name
        if not copy.is_file() or copy.read_bytes() != f.read_bytes():
            tmp = d / f".{f.name}.{os.getpid()}"
            shutil.copyfile(f, tmp)
            os.replace(tmp, copy)  # atomic: a concurrent build never sees half a file
    return d, d / SOURCE.name, (d / f"{name}.so").is_file()


def _ready_marker(name: str) -> Path:
    """Written after a build loaded fine: a run that must not wait loads only a build with it."""
    return cache_dir() / "scan" / name / f"{name}.ready"


def _ready_stamp() -> str:
    """What a build depends on besides its source: a new torch or Python makes ninja rebuild."""
    import sysconfig

    return f"torch {torch.__version__} {Path(torch.__file__).parent} {sysconfig.get_paths()['include']}"


def cxx_wrapper(directory: Path) -> Path | None:
    """A one-line script that runs $CXX when it holds arguments ("ccache g++", "c++ -m..."),
    else None. torch's cpp_extension takes $CXX as one program name (it quotes it into the
    ninja file), so such a $CXX failed its build while the eval kernel's took it (2026-12-03)."""
    from hgmamba_core.ssm.mixer_kernel import compiler  # the one reading of $CXX

    cmd = compiler() if os.environ.get("CXX", "").strip() else None
    if cmd is None or len(cmd) < 2:
        return None
    script = directory / "cxx"
    text = f'#!/bin/sh\nexec {shlex.join(cmd)} "$@"\n'
    if not script.is_file() or script.read_text(encoding="utf-8") != text:
        tmp = directory / f".cxx.{os.getpid()}"
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o755)
        os.replace(tmp, script)
    return script


@contextlib.contextmanager
def _cxx_for_torch(directory: Path):
    """$CXX as cpp_extension can use it, for the length of one build."""
    script = cxx_wrapper(directory)
    if script is None:
        yield
        return
    old = os.environ["CXX"]
    os.environ["CXX"] = str(script)
    try:
        yield
    finally:
        os.environ["CXX"] = old


def _compile(name: str, cflags: list[str]):
    """Build (or, when up to date, only load) one attempt, under a lock every builder takes."""
    from torch.utils import cpp_extension

    from hgmamba_core.buildlock import hold_lock, lock_path

    with hold_lock(lock_path(cache_dir(), name), wait=True):
        build, src, built = _build_dir(name)
        if not built:
            print(
                "hgmamba: compiling the CPU scan kernel once for this machine "
                "(~30 s; later runs reuse it)",
                file=sys.stderr,
                flush=True,
            )
        with _cxx_for_torch(build):
            ext = cpp_extension.load(
                name=name,
                sources=[str(src)],
                extra_cflags=cflags,
                extra_ldflags=["-fopenmp"],
                build_directory=str(build),
                verbose=False,
            )
        try:
            tmp = build / f".ready.{os.getpid()}"
            tmp.write_text(_ready_stamp(), encoding="utf-8")
            os.replace(tmp, _ready_marker(name))
        except OSError:
            pass
        return ext


def _quiet_cpp_extension():
    log = logging.getLogger("torch.utils.cpp_extension")
    level = log.level
    log.setLevel(logging.ERROR)  # it logs a CUDA_HOME notice on import that says nothing to us
    return log, level


def _ready_attempt() -> tuple[str, list[str]] | None:
    """The build attempt whose finished build for this torch is in the cache (file reads only)."""
    if os.environ.get("HGMAMBA_NO_FUSED"):
        return None
    stamp = _ready_stamp()
    for name, cflags in _build_attempts():
        try:
            if _ready_marker(name).read_text(encoding="utf-8") == stamp:
                return name, cflags
        except OSError:
            continue
    return None


def built_extension():
    """The kernel when a finished build is in the cache (loading takes about 0.1 s), else None.
    Never compiles: where `hgmamba lift` runs the modules (no eval kernel), it uses this so that
    a first run does not wait ~30 s on a compiler."""
    return load_extension() if _ready_attempt() is not None else None


@functools.cache
def load_extension():
    """The compiled module (forward/backward), or None with one logged warning line if it
    cannot be built.

    Built once per machine into the cache, blocking (announced on stderr); later processes only
    load the .so (about 0.1 s). Set HGMAMBA_NO_FUSED=1 to skip it.
    """
    if os.environ.get("HGMAMBA_NO_FUSED"):
        return None
    ready = _ready_attempt()
    attempts = _build_attempts()
    if ready is not None:  # a finished build first: no compile attempt of a failing variant
        attempts = [ready, *(a for a in attempts if a[0] != ready[0])]
    log, level = _quiet_cpp_extension()
    errors = []
    try:
        for name, cflags in attempts:
            try:
                return _compile(name, cflags)
            except Exception as exc:  # no compiler, no headers, build error: try the next
                errors.append(exc)
    finally:
        log.setLevel(level)
    first = (str(errors[0]).strip().splitlines() or [type(errors[0]).__name__])[0]
    logging.getLogger(__name__).warning(
        "hgmamba: fused CPU selective scan unavailable (%s); using the slower PyTorch scan",
        first[:200],
    )
    return None


def fused_available() -> bool:
    """True when the C++ kernel is (or can be) built on this machine."""
    return load_extension() is not None


class _FusedScan(torch.autograd.Function):
    """Computes in float32 (float64 for float64 u); grads come back in each input's dtype."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus):
        ext = load_extension()
        if ext is None:
            raise RuntimeError("the fused CPU selective scan is not available here")
        work = torch.float64 if u.dtype == torch.float64 else torch.float32

        def prep(t):
            return u.new_empty(0, dtype=work) if t is None else t.detach().to(work).contiguous()

        # B and C as (b, L, n): one step's n values adjacent, as the kernel reads them.
        Bt = B.detach().to(work).transpose(1, 2).contiguous()
        Ct = C.detach().to(work).transpose(1, 2).contiguous()
        args = (prep(u), prep(delta), prep(A), Bt, Ct, prep(D), prep(z), prep(delta_bias))
        out, ckpt = ext.forward(*args, bool(delta_softplus), any(ctx.needs_input_grad))
        ctx.save_for_backward(*args, ckpt)
        ctx.softplus = bool(delta_softplus)
        ctx.dtypes = [None if t is None else t.dtype for t in (u, delta, A, B, C, D, z, delta_bias)]
        return out.to(u.dtype)

    @staticmethod
    def backward(ctx, dout):
        *args, ckpt = ctx.saved_tensors
        g = dout.to(args[0].dtype).contiguous()
        du, ddelta, dA, dBt, dCt, dD, dz = load_extension().backward(*args, ctx.softplus, ckpt, g)
        dbias = ddelta.sum(dim=(0, 2)) if ctx.dtypes[7] is not None else None
        grads = (du, ddelta, dA, dBt.transpose(1, 2), dCt.transpose(1, 2), dD, dz, dbias)
        out = [None if dt is None else gr.to(dt) for gr, dt in zip(grads, ctx.dtypes, strict=True)]
        return (*out, None)


def selective_scan_fused(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False
) -> torch.Tensor:
    """The fused CPU kernel (call `fused_available()` first); same contract as the reference."""
    return _FusedScan.apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
