"""One-time builds (the fused CPU scan kernel) made in a detached background process, so a first
`hgmamba lift` never sits waiting on a compiler.

The run that finds a build missing calls `schedule`, which starts `python -m
hgmamba_core.background JOB ...` in its own process group at nice 19 / SCHED_IDLE and returns
at once; the run itself takes the slower path that needs no build (the PyTorch scan), and the
next run finds the build in the cache. One lock file per build, held with flock by the
builder for its whole life, keeps concurrent runs from starting a second builder (the OS drops
the lock when the builder exits, even by a crash, so a stale lock never blocks anyone). Where
the cache cannot be written nothing is scheduled and nothing is said: the run simply uses the
slower path, as it would without a compiler.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock, so no background build (lift keeps the PyTorch scan)
    fcntl = None

LOCK_DIR = "locks"


def lock_path(cache: Path, key: str) -> Path:
    """The lock file of one build (key: any string naming it, e.g. the kernel's build name)."""
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)[:60]
    return cache / LOCK_DIR / f"{safe}-{digest}.lock"


def _open_lock(path: Path) -> int | None:
    """A descriptor of the lock file (made if needed), or None where that is impossible."""
    if fcntl is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        pass
    try:
        return os.open(path, os.O_RDONLY)  # flock works on a read-only descriptor too
    except OSError:
        return None


@contextlib.contextmanager
def hold_lock(path: Path, wait: bool = False) -> Iterator[bool | None]:
    """Yields True while this process holds the lock, False while another process holds it,
    None when the lock file cannot be made (an unwritable cache). wait: block until it is free.
    Not re-entrant: a second hold of the same lock in one process waits for the first."""
    fd = _open_lock(path)
    if fd is None:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def is_running(lock: Path) -> bool:
    """True when a builder holds this lock now."""
    if not lock.is_file():
        return False
    with hold_lock(lock) as free:
        return free is False


def schedule(job: str, args: list[str], lock: Path, log: Path | None = None) -> bool:
    """Start the background builder for `job` unless one runs already; True if one was started
    (or is running). Never raises: False means no build will happen (cache not writable).

    The lock is taken here and handed to the builder as an inherited descriptor (a flock
    belongs to the open file, not the process), so a second run starting while the builder
    is still importing sees it held and starts no second builder."""
    fd = _open_lock(lock)
    if fd is None:
        return False
    try:
        if not os.access(lock.parent, os.W_OK):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True  # another run's builder is at it
        cmd = [sys.executable, "-m", "hgmamba_core.background", job, "--lock", str(lock),
               "--lock-fd", str(fd), *args]  # fmt: skip
        return _spawn(cmd, fd, lock.parent, log)
    finally:
        os.close(fd)  # never LOCK_UN here: that would release the builder's lock too


def _spawn(cmd: list[str], fd: int, cwd: Path, log: Path | None) -> bool:
    """Start the builder detached, handing it `fd`; False if it cannot be started."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=_import_path())
    try:
        out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    except OSError:
        out = subprocess.DEVNULL
    try:
        subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, close_fds=True,
            pass_fds=(fd,), cwd=str(cwd), **_detached(),
        )  # fmt: skip
    except OSError:
        return False
    finally:
        if out is not subprocess.DEVNULL:
            out.close()
    return True


def _detached() -> dict:
    """Popen arguments that keep the builder alive after Ctrl-C or the end of the run. Its own
    process group, not its own session: with Linux's autogroup scheduling a new session is a
    new group that gets a fair share of the CPU whatever its nice value, so nice 19 would not
    keep it off the run's cores; inside the session's group it does."""
    if sys.version_info >= (3, 11):
        return {"process_group": 0}
    return {"start_new_session": True}


def _lower_priority() -> None:
    """nice 19 and SCHED_IDLE (where there is one): the compiler it starts inherits both."""
    with contextlib.suppress(OSError):
        os.nice(19)
    if hasattr(os, "SCHED_IDLE"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def _import_path() -> str:
    """PYTHONPATH for the builder: this checkout first, so it builds what this run would load."""
    root = str(Path(__file__).resolve().parents[1])
    rest = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join([root, rest]) if rest else root


def _build_scan() -> int:
    from hgmamba_core.ssm import fused

    return 0 if fused.load_extension() is not None else 1


def main(argv: list[str] | None = None) -> int:
    """The detached builder: holds the lock it was handed (or takes it, or exits if another
    builder has it), lowers its priority, builds."""
    ap = argparse.ArgumentParser(prog="python -m hgmamba_core.background")
    ap.add_argument("job", choices=("scan",))
    ap.add_argument("--lock", type=Path, required=True)
    ap.add_argument("--lock-fd", type=int, default=None, help="an inherited, locked descriptor")
    ap.add_argument("rest", nargs="*")
    a = ap.parse_args(argv)
    _lower_priority()
    if a.lock_fd is None:
        with hold_lock(a.lock) as free:
            if free is False:
                return 0  # another builder is at it
        return _build_scan()
    from torch.utils import cpp_extension  # noqa: F401 - slow imports while the lock is held

    from hgmamba_core.ssm import fused

    os.close(a.lock_fd)  # the build takes the same lock again at once (it is not re-entrant)
    return 0 if fused.load_extension() is not None else 1


if __name__ == "__main__":
    sys.exit(main())
