"""One pass over the seed's people, on every core, feeding any number of emulator builders.

`person(seed, i, anchor)` is pure, so the people are cut into chunks and each chunk is turned into emulator
records in a worker process (fork). Each job is a per-person function and a per-chunk function (both
top-level, so they pickle); the results come back in chunk order, so whatever the builder does with them
happens in exactly the order a single-process loop would have used, and the seeded data is identical.
Small builds (tests) run in-process through the same functions.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sandbox.seed import Person, person

#: Builds of at least this many people use a process pool (one worker per core); smaller ones run in-process.
PARALLEL_MIN = 50_000
CHUNK = 10_000


@contextlib.contextmanager
def paused_gc(count: int) -> Iterator[None]:
    """Seeding makes millions of long-lived objects and no garbage cycles, so the cyclic collector would only
    re-scan them again and again (a fifth of a large build). After a large build (`count` >= PARALLEL_MIN) the
    survivors are frozen (`gc.freeze`): later collections, while serving, skip them too. And the youngest
    generation is collected every 20,000 allocations instead of 700: a query page makes hundreds of dicts that
    reference counting frees anyway, and re-walking them cost a tenth of serving a page on a large org."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
            if count >= PARALLEL_MIN:
                gc.freeze()
                gc.set_threshold(max(gc.get_threshold()[0], 20_000), *gc.get_threshold()[1:])


#: (per person, per chunk, context): `per_person(ctx, p)` -> item or None; `per_chunk(ctx, items)` -> result.
Job = tuple[Callable[[Any, Person], Any], Callable[[Any, list[Any]], Any], Any]


def _run(task: tuple[int, int, int, datetime, Sequence[Job]]) -> tuple[Any, ...]:
    seed, start, stop, anchor, jobs = task
    items: list[list[Any]] = [[] for _ in jobs]
    steps = [(out, fn, ctx) for out, (fn, _, ctx) in zip(items, jobs, strict=True)]
    for i in range(start, stop):
        p = person(seed, i, anchor)
        for out, fn, ctx in steps:
            item = fn(ctx, p)
            if item is not None:
                out.append(item)
    return tuple(per_chunk(ctx, out) for out, (_, per_chunk, ctx) in zip(items, jobs, strict=True))


def chunks(seed: int, count: int, anchor: datetime, jobs: Sequence[Job]) -> Iterator[tuple[Any, ...]]:
    """Per chunk of people, in order: one result per job."""
    tasks = [(seed, a, min(a + CHUNK, count), anchor, tuple(jobs)) for a in range(0, count, CHUNK)]
    workers = os.cpu_count() or 1
    if count < PARALLEL_MIN or workers < 2:
        yield from map(_run, tasks)
        return
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        yield from pool.imap(_run, tasks)
