"""Work done while a CRM write is on the wire: the next batch is decided during this batch's calls.

A run's write phase alternates local work (deciding a batch of persons, settling its writes in the state)
with CRM calls that mostly wait on the network and the quota. Here the calls of a batch go out on a worker
thread (`WriteLane`), one at a time, while the main thread steps the next batch's decisions (`Ahead`).

Only the call itself leaves the main thread: the state store is used by the main thread alone, no
transaction is open across a call (the engine's rule already), and the work stepped meanwhile only reads.
The ledger's order for each batch (intent, send, settle) is the one it had without the lane.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Ahead(Generic[T]):
    """A computation in steps (a generator that yields between units and returns its result), advanced by
    `step` while a call is on the wire and completed by `result`. An exception it raises waits for `result`:
    it belongs to the computation, not to whichever call happened to be in flight."""

    def __init__(self, steps: Generator[None, None, T]) -> None:
        self._steps = steps
        self._done = False
        self._value: T | None = None
        self._error: BaseException | None = None

    def step(self) -> bool:
        """One unit of work; False once there is none left."""
        if self._done:
            return False
        try:
            next(self._steps)
            return True
        except StopIteration as stop:
            self._value = stop.value
        except Exception as exc:  # noqa: BLE001 - raised again by result()
            self._error = exc
        self._done = True
        return False

    def result(self) -> T:
        while self.step():
            pass
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


def run_through(steps: Generator[None, None, T]) -> T:
    """A stepped computation done at once."""
    return Ahead(steps).result()


class WriteLane:
    """One worker thread for one connector's calls: a call goes out there, and `idle` is stepped here until
    its answer is in (or there is nothing left to step). The call's exception is raised here, as if called
    directly. Calls never overlap one another, so the connector is never used by two threads at once."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._pool: ThreadPoolExecutor | None = None

    def call(self, idle: Callable[[], bool] | None, fn: Callable[..., T], *args: Any,
             meanwhile: Callable[[], None] | None = None) -> T:
        """`fn(*args)` on the lane; here, `meanwhile` once (work that needs the call sent, not answered), then
        `idle` until the answer is in. Without `idle` there is no lane: `meanwhile`, then the call, here."""
        if idle is None:
            if meanwhile is not None:
                meanwhile()
            return fn(*args)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"leadsync-write-{self._name}")
        future = self._pool.submit(contextvars.copy_context().run, fn, *args)  # with the run id for its logs
        try:
            if meanwhile is not None:
                meanwhile()
        except BaseException:
            wait([future])  # the connector is never left to two threads
            raise
        while not future.done() and idle():
            pass
        return future.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
