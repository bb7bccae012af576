"""Run an iterator (a video decoder) on a worker thread, a few items ahead of its consumer.

PyAV decodes with the GIL released, as torch's detector and OpenCV's drawing run, so decoding
frame i+1 overlaps detecting (or drawing) frame i. The queue is bounded (`depth` frames), so
memory stays flat on long videos; an exception in the worker is raised in the consumer; closing
the generator early (a break, an error downstream) stops the worker.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
DEFAULT_DEPTH = 4
_END = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _produce(source: Iterable, out: queue.Queue, stop: threading.Event) -> None:
    it = iter(source)
    try:
        _fill(it, out, stop)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()  # a generator source (iter_frames) closes its file on this thread


def _put(out: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put `item` as soon as there is room; False if the consumer stopped first."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _fill(it: Iterator, out: queue.Queue, stop: threading.Event) -> None:
    try:
        for item in it:
            if not _put(out, item, stop):
                return
        item = _END
    except BaseException as e:  # noqa: BLE001 - handed to the consumer's thread
        item = _Failure(e)
    _put(out, item, stop)


def prefetch(source: Iterable[T], depth: int = DEFAULT_DEPTH) -> Iterator[T]:
    """Yield `source`'s items, produced on a worker thread at most `depth` items ahead (depth 0:
    no thread, the items as the source yields them; for comparisons in bench/lift.py)."""
    if depth <= 0:
        yield from source
        return
    out: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    worker = threading.Thread(
        target=_produce, args=(source, out, stop), name="hgmamba-prefetch", daemon=True
    )
    worker.start()
    try:
        while (item := out.get()) is not _END:
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()
