"""The cyclic garbage collector paused while a block builds many long-lived objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block; the previous state after it.

    Loading a pack or warming the engine builds a few hundred thousand objects that live as long
    as the engine (the structure tree, the term tables, the Index trees). Python starts a
    collection every few hundred allocations, and the older generations' collections walk every
    object made so far: that was most of a pack's load time (1.4 s of a 1.8 s tree load, 0.35 s
    with collection paused). Nothing made there is garbage, so pausing frees nothing later.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# The youngest generation's collection threshold for a process that codes notes (Python's
# default: 700 allocations). Coding one note makes tens of thousands of short-lived objects, so
# at 700 the collector ran some six times a note and, with the older generations' collections it
# triggers, took 2.2 ms of a 27 ms note (400 CodiEsp background notes, one core); at 10,000 it
# runs about once every four notes and takes 1.0 ms. Garbage without cycles is freed by
# reference counting either way; only cycles wait longer, a few thousand objects at most.
CODING_YOUNG_THRESHOLD = 10_000


def freeze_long_lived() -> tuple[int, int, int]:
    """Collect once, then move every object alive now out of the collector's generations
    (``gc.freeze``), and collect the youngest generation less often
    (``CODING_YOUNG_THRESHOLD``). For a process that has just loaded and warmed an engine and
    will code notes until it ends (the server's engine process, a batch worker, a bench of
    either). Returns the collector's thresholds before, for :func:`thaw`.

    The loaded engine is some 500,000 objects. Left in the oldest generation, each full
    collection walks all of them; one starts whenever the objects that outlive a collection
    reach a quarter of that number, which the per-note caches do within about a hundred notes.
    On 100 CodiEsp dev notes that cost 6 ms a note in collections, against 2 ms once frozen.
    Frozen objects are still freed when no reference is left, but a reference cycle among them
    is never collected, so only objects meant to live as long as the process should be alive.
    """
    gc.collect()
    gc.freeze()
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], CODING_YOUNG_THRESHOLD), *before[1:])
    return before


def thaw(before: tuple[int, int, int]) -> None:
    """Undo :func:`freeze_long_lived`: the frozen objects back in the collector's generations,
    its thresholds as ``before``."""
    gc.unfreeze()
    gc.set_threshold(*before)
