"""A page iterator run ahead in a worker thread, so the next page is on the wire while this one is stored.

The pull is bound by the CRM (its latency, its quota) and the store by the CPU; side by side the run takes
about the longer of the two instead of their sum. Order, exceptions and the generator's own clean-up are the
plain iterator's: items arrive in order, an exception the pull raises arrives after the items before it, and
a consumer that stops early closes the pull in the thread that runs it.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

T = TypeVar("T")
_END = object()


def prefetched(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """`items`, produced up to `depth` ahead by a worker thread (with the caller's context: log run ids)."""
    ahead: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
    gone = threading.Event()  # the consumer stopped early: the worker closes the pull and leaves

    def offer(entry: tuple[Any, BaseException | None]) -> bool:
        while not gone.is_set():
            try:
                ahead.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not offer((item, None)):
                    break
            else:
                offer((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            offer((_END, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=contextvars.copy_context().run, args=(work,), name="leadsync-pull",
                              daemon=True)
    worker.start()
    try:
        while True:
            item, exc = ahead.get()
            if exc is not None:
                raise exc
            if item is _END:
                return
            yield item
    finally:
        gone.set()
        worker.join()  # nothing else may use the connector while its pull is still running
