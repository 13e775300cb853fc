"""The coders of a one-machine batch: the parent plus ``workers - 1`` forked processes."""

from __future__ import annotations

import gc
import sys
from typing import Any

import pytest

from clinicode.batch.coders import Coders, code_lines
from clinicode.batch.rows import Note
from tests.batch.notes import clinical_notes

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="worker processes need fork")


def test_two_workers_are_the_parent_and_one_fork_and_code_the_same_lines(engine: Any) -> None:
    import torch

    threads, before = torch.get_num_threads(), gc.get_threshold()
    notes = [Note(nid, text, i) for i, (nid, text) in enumerate(clinical_notes(12), start=1)]
    expected = code_lines(engine, notes, "outpatient", None)
    coders = Coders(engine, 3, "outpatient", None)
    try:
        assert coders._pool is not None and len(coders._pool._pool) == 2  # type: ignore[attr-defined]
        assert gc.get_freeze_count() > 0  # the engine's objects frozen before the fork
        futures = [coders.submit(notes[i : i + 2]) for i in range(0, len(notes), 2)]
        got = [line for f in futures for line in f.result()]
    finally:
        coders.close()
    assert got == expected  # same bytes, in order, whichever coder took a chunk
    assert all(ok for _, ok in got)
    assert gc.get_freeze_count() == 0 and torch.get_num_threads() == threads  # all as it was
    assert gc.get_threshold() == before  # the coders' young-generation threshold undone


def test_coders_that_fail_to_start_leave_nothing_behind(engine: Any) -> None:
    class NoWarmUp:
        """The engine, failing while it warms up (a missing resource, an out-of-memory)."""

        info, code_sets, kb = engine.info, engine.code_sets, engine.kb

        def warm_up(self) -> None:
            raise RuntimeError("warm-up failed")

    before = gc.get_threshold()
    with pytest.raises(RuntimeError, match="warm-up failed"):
        Coders(NoWarmUp(), 2, "outpatient", None)  # type: ignore[arg-type]
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before


def test_one_worker_codes_in_the_parent_and_forks_nothing(engine: Any) -> None:
    notes = [Note("a", clinical_notes(1)[0][1], 1)]
    coders = Coders(engine, 1, "outpatient", None)
    try:
        assert coders._pool is None
        assert coders.submit(notes).result() == code_lines(engine, notes, "outpatient", None)
    finally:
        coders.close()


def _die(notes: list[Note]) -> list[Any]:
    import os

    os._exit(9)  # a worker killed mid-chunk (the OOM killer, kill -9)


def test_a_worker_that_dies_mid_chunk_is_an_error_not_a_hang(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import concurrent.futures

    import clinicode.batch.coders as coders_mod

    monkeypatch.setattr(coders_mod, "_worker_code", _die)  # the forked workers inherit it
    notes = [Note("a", clinical_notes(1)[0][1], 1)]
    coders = Coders(engine, 2, "outpatient", None)
    try:
        slot = coders._slots.get()  # take the parent's slot: the chunk goes to the worker
        assert slot is None
        future = coders.submit(notes)
        with pytest.raises(coders_mod.WorkerLost, match="run the same command again"):
            future.result(timeout=60)
    except concurrent.futures.TimeoutError:  # pragma: no cover - the hang this test guards
        pytest.fail("a dead worker's chunk was waited on forever")
    finally:
        coders._slots.put(None)
        coders.close()
