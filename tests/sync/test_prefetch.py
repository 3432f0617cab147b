"""The pull run ahead in a thread behaves as the plain iterator: order, exceptions, early stop, context."""

from __future__ import annotations

import contextvars
import threading

import pytest

from sync.prefetch import prefetched

VAR = contextvars.ContextVar("VAR", default="unset")


def test_items_arrive_in_order_with_the_callers_context():
    seen = []

    def pages():
        for i in range(50):
            seen.append(VAR.get())
            yield i

    VAR.set("run-1")
    assert list(prefetched(pages(), depth=3)) == list(range(50))
    assert set(seen) == {"run-1"}


def test_an_exception_arrives_after_the_items_before_it():
    def pages():
        yield 1
        yield 2
        raise RuntimeError("quota")

    got = []
    with pytest.raises(RuntimeError, match="quota"):
        for p in prefetched(pages()):
            got.append(p)
    assert got == [1, 2]


def test_stopping_early_closes_the_pull_in_its_own_thread_and_waits_for_it():
    produced, closed_in = [], []

    def pages():
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            closed_in.append(threading.current_thread().name)

    it = prefetched(pages(), depth=2)
    assert [next(it), next(it)] == [0, 1]
    it.close()
    assert closed_in == ["leadsync-pull"]  # closed by the worker, before close() returned
    assert len(produced) <= 2 + 2 + 1  # consumed, queued ahead, and the one in hand


def test_the_next_page_is_fetched_while_this_one_is_handled():
    asked_for_next = threading.Event()

    def pages():
        yield 0
        asked_for_next.set()  # the worker is already pulling page 1
        yield 1

    it = prefetched(pages(), depth=1)
    assert next(it) == 0
    assert asked_for_next.wait(5)  # while page 0 is still in the consumer's hands
    assert list(it) == [1]
