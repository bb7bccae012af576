"""One flock per one-time build (the CPU kernels), so concurrent first runs compile it once.

A builder holds the lock file of its build while it compiles; a second run wanting the same
build waits on the lock, then finds the finished file and only loads it. The OS drops a flock
when its holder exits, even by a crash, so a stale lock never blocks anyone. Where the lock
file cannot be made (an unwritable cache; Windows has no flock) the build runs unlocked.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; builds there run unlocked
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


def is_held(lock: Path) -> bool:
    """True when another process holds this lock now (a build in progress)."""
    if not lock.is_file():
        return False
    with hold_lock(lock) as free:
        return free is False
