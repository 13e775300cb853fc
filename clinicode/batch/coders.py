"""The processes that code a one-machine batch: the parent itself and ``workers - 1`` forks.

With ``workers=N`` the parent loads the engine, freezes its objects for the cyclic garbage
collector (``gc.freeze``: a child's collections then leave the shared pages unwritten, so they
stay shared copy-on-write) and forks N-1 worker processes. Each process, the parent included,
then warms up its own engine (the NLP pipeline, the guideline layer: some 4.5 s on one core) at
the same time, instead of the parent alone before forking while the other cores wait, and
freezes what that built. The parent then codes chunks itself alongside the workers: N processes
code on N cores, and no process holds a loaded engine that it does not use (forking N workers
from an idle parent kept N+1 copies of the engine's resident pages for N coders). Each coder
returns its rows already serialised (the JSON line of :func:`~clinicode.batch.rows.dumps_row`),
so only bytes cross the pipe and the parent's per-note work is writing them.

A chunk goes to whichever coder is free (one thread per coder slot in the parent; a worker
slot's thread waits on the pool without the GIL). Every coder runs one torch/BLAS thread.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.pool import Pool
from typing import TYPE_CHECKING, Any

from clinicode.batch.coding import code_notes
from clinicode.batch.rows import Note, dumps_row
from clinicode.errors import ClinicodeError, InputError
from clinicode.gcpause import freeze_long_lived, thaw
from clinicode.threads import one_thread

if TYPE_CHECKING:
    from clinicode.engine import Engine

Coded = tuple[str, bool]  # a row's JSON line, and whether the note was coded (not an error row)

# how often a coder thread waiting on a worker checks that the workers are still alive
_ALIVE_CHECK_S = 1.0


class WorkerLost(ClinicodeError):
    """A worker process died while it coded a chunk (killed, out of memory): the pool would
    wait for its answer forever."""


# The engine and job settings a forked worker inherits (set in the parent just before it forks).
_FORKED: tuple[Engine, str, tuple[str, ...] | None] | None = None


def code_lines(
    engine: Engine, notes: Sequence[Note], setting: str, systems: Sequence[str] | None
) -> list[Coded]:
    """The JSON line of each note's row, in order, and whether it was coded."""
    return [(dumps_row(r), bool(r["ok"])) for r in code_notes(engine, notes, setting, systems)]


def _worker_init() -> None:
    assert _FORKED is not None, "batch worker forked without an engine"
    one_thread()
    engine = _FORKED[0]
    engine.kb.after_fork()  # an SQLite connection must not cross a fork
    engine.warm_up()  # alongside the parent's and the other workers' warm-up
    freeze_long_lived()


def _worker_code(notes: list[Note]) -> list[Coded]:
    assert _FORKED is not None, "batch worker forked without an engine"
    engine, setting, systems = _FORKED
    return code_lines(engine, notes, setting, systems)


class Coders:
    """``workers`` coders (the parent and ``workers - 1`` forked processes) behind one queue."""

    def __init__(
        self, engine: Engine, workers: int, setting: str, systems: Sequence[str] | None
    ) -> None:
        global _FORKED
        self.engine = engine
        self.setting = setting
        self.systems = tuple(systems) if systems else None
        self._pool: Pool | None = None
        self._restore: tuple[int | None, Any] | None = None
        self._pids: set[int] = set()  # the workers as forked
        self._slots: queue.SimpleQueue[Pool | None] = queue.SimpleQueue()
        self._slots.put(None)  # None: the parent codes the chunk itself
        if workers > 1 and "fork" not in mp.get_all_start_methods():
            raise InputError("--workers above 1 needs the fork start method (Linux or macOS)")
        self._threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="coder")
        self._gc_before: tuple[int, int, int] | None = freeze_long_lived()
        try:
            if workers > 1:
                self._restore = one_thread()  # the parent is one of the coders: one core
                _FORKED = (engine, setting, self.systems)
                self._pool = mp.get_context("fork").Pool(workers - 1, initializer=_worker_init)
                self._pids = {p.pid for p in getattr(self._pool, "_pool", [])}
                for _ in range(workers - 1):
                    self._slots.put(self._pool)
            engine.warm_up()  # the workers warm up theirs meanwhile (``_worker_init``)
            freeze_long_lived()  # what warming up built
        except BaseException:
            self.close()  # no worker, thread limit or frozen collector left behind
            raise

    def submit(self, notes: list[Note]) -> Future[list[Coded]]:
        """The coded lines of ``notes``, from the next free coder."""
        return self._threads.submit(self._code, notes)

    def _code(self, notes: list[Note]) -> list[Coded]:
        slot = self._slots.get()
        try:
            if slot is None:
                return code_lines(self.engine, notes, self.setting, self.systems)
            return self._wait(slot, slot.apply_async(_worker_code, (notes,)))
        finally:
            self._slots.put(slot)

    def _wait(self, pool: Pool, job: Any) -> list[Coded]:
        """``job``'s answer, or :class:`WorkerLost` once a worker has died: the pool starts a
        new one, but the dead one's chunk is never answered."""
        started = self._pids
        while not job.ready():
            job.wait(_ALIVE_CHECK_S)
            alive = {p.pid for p in getattr(pool, "_pool", []) if p.exitcode is None}
            if not job.ready() and not started <= alive:
                raise WorkerLost(
                    "a batch worker process died while coding (killed, or out of memory?); "
                    "the rows written so far are kept: run the same command again to resume"
                )
        result: list[Coded] = job.get()
        return result

    def close(self) -> None:
        """Stop the coder threads and workers; the parent's threads and GC as they were."""
        global _FORKED
        self._threads.shutdown(wait=True, cancel_futures=True)
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
        _FORKED = None
        if self._gc_before is not None:
            thaw(self._gc_before)
            self._gc_before = None
        if self._restore is not None:
            torch_threads, limits = self._restore
            limits.restore_original_limits()
            if torch_threads is not None:
                import torch

                torch.set_num_threads(torch_threads)
            self._restore = None
