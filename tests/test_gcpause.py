"""The collector helpers: a paused block, and freezing what a loaded engine keeps."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from clinicode.gcpause import CODING_YOUNG_THRESHOLD, freeze_long_lived, gc_paused, thaw


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


def test_freeze_collects_the_young_generation_less_often_and_thaw_restores(
    unfrozen: None,
) -> None:
    before = gc.get_threshold()
    try:
        returned = freeze_long_lived()
        assert returned == before
        assert gc.get_threshold()[0] >= CODING_YOUNG_THRESHOLD
        assert gc.get_threshold()[1:] == before[1:]
        assert gc.get_freeze_count() > 0
        thaw(returned)
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0
    finally:
        gc.set_threshold(*before)
