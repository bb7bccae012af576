"""prefetch(): decoding on a worker thread ahead of the detector, bounded, errors and early
exits handled."""

from __future__ import annotations

import threading

import pytest

from hgmamba_core.prefetch import prefetch


def test_items_come_in_order_with_and_without_the_thread():
    assert list(prefetch(range(50), 4)) == list(range(50))
    assert list(prefetch(range(50), 0)) == list(range(50))
    assert list(prefetch([], 4)) == []


def test_an_error_in_the_source_is_raised_in_the_consumer():
    def source():
        yield 1
        raise ValueError("corrupt packet")

    gen = prefetch(source(), 2)
    assert next(gen) == 1
    with pytest.raises(ValueError, match="corrupt packet"):
        next(gen)


def test_the_worker_stays_at_most_depth_items_ahead():
    produced = []
    consumed = threading.Event()

    def source():
        for i in range(100):
            produced.append(i)
            yield i

    gen = prefetch(source(), 3)
    assert next(gen) == 0
    consumed.wait(0.3)  # give the worker time to run ahead as far as it can
    assert len(produced) <= 1 + 3 + 1  # the one consumed, a full queue, one waiting to be put
    gen.close()


def test_closing_early_stops_the_worker_and_closes_a_generator_source():
    closed = threading.Event()

    def source():
        try:
            yield from range(10_000)
        finally:
            closed.set()

    before = threading.active_count()
    gen = prefetch(source(), 2)
    assert [next(gen) for _ in range(3)] == [0, 1, 2]
    gen.close()
    assert closed.is_set()  # the file behind it is closed, on the worker, before close returns
    assert threading.active_count() == before
