"""The collector helpers: a paused block, and freezing what a loaded engine keeps."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from clinicode.gcpause import freeze_long_lived, gc_paused


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the test process's objects go back to the collector's generations


def test_paused_block_restores_the_previous_state() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block found it paused: it stays so
    assert gc.isenabled()


def test_freeze_moves_live_objects_out_and_collects_garbage_first(unfrozen: None) -> None:
    class Node:
        def __init__(self) -> None:
            self.other: Node | None = None

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only the collector frees it
    cycle = weakref.ref(a)
    del a, b
    kept = [Node() for _ in range(100)]
    freeze_long_lived()
    assert cycle() is None  # collected before freezing (frozen, it would never be)
    assert gc.get_freeze_count() >= len(kept)
    in_generations = {id(o) for o in gc.get_objects()}
    assert not any(id(o) in in_generations for o in kept)
