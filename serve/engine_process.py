"""Engine work in child processes, so the worker process that runs the event loop does only I/O.

An engine call is seconds of pure-Python CPU work. Run on a thread of the worker process it
holds the GIL, and the event loop (``/health/live``, accepting connections, answering 503s)
waits for it. :class:`ProcessEngine` is the service's engine (an ``EngineLike``) whose
``suggest`` and ``suggest_many`` run in ``processes`` child processes of this worker, each
holding its own engine loaded by a picklable factory (:class:`PackFactory`): the worker
process keeps only the knowledge base (code search, lookups, decision checks), the model's
info and the code-set versions.

* A call blocks its caller's thread (the admission thread, ``serve/admission.py``) on a pipe,
  which holds no GIL. It carries the caller's deadline (``clinicode.deadline``; monotonic
  time is the same in every process): the child stops at its engine's next stage past it, and
  a cancel (the client went away) reaches it through a shared flag.
* A child that has not answered ``kill_grace_s`` after its deadline or cancel (stuck in one
  stage) is killed and replaced, so one note can never freeze a worker.
* Children run at a lower priority (``nice``), so on a busy machine the event loops of the
  worker processes get the CPU first.
* A child that dies is replaced in the background; calls meanwhile wait for a free child
  (within their deadline).

``clinicode.engine.Engine`` and the CLI are unchanged: this is only how the service runs
them. Swapping in another pack is making another :class:`ProcessEngine` (the factory of
another pack) and handing it to the holder; the one swapped out ends its children when it is
closed or collected. Importing this module does no I/O.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from clinicode.deadline import Deadline, DeadlineExceeded, current_deadline, within
from clinicode.gcpause import freeze_long_lived
from clinicode.schema import ModelInfo, SuggestResult

from .engine_holder import EngineLike, EngineUnavailable

log = logging.getLogger("clinicode.serve")

_POLL_S = 0.05  # how often a waiting call looks at its deadline and its child


class EngineProcessError(EngineUnavailable):
    """The engine process died or could not start; the message says which (503 with
    Retry-After: a replacement is starting)."""


@dataclass(frozen=True)
class PackFactory:
    """Loads the engine of the pack in ``pack_dir`` over the KB at ``kb_path`` and warms it up
    (ready means ready: no slow first note). Picklable, so a child process can run it."""

    pack_dir: Path
    kb_path: Path

    def __call__(self) -> EngineLike:
        from clinicode.engine import load

        engine = load(self.pack_dir, kb_path=self.kb_path)
        engine.warm_up()
        return engine


class _ChildDeadline(Deadline):
    """The caller's deadline as the child sees it: its time, or the caller's cancel of this
    job (the shared flag holds the id of the job to cancel)."""

    def __init__(self, at: float, flag: Any, job: int) -> None:
        super().__init__(at)
        self._flag = flag
        self._job = job

    def check(self) -> None:
        if self._flag.value == self._job:
            raise DeadlineExceeded("cancelled by the caller")
        super().check()


def _child_main(conn: Connection, flag: Any, factory: Callable[[], EngineLike], nice: int) -> None:
    """A child's life: load the engine, then answer jobs until the pipe closes or None comes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which stops us
    if nice:
        try:
            os.nice(nice)
        except OSError:  # pragma: no cover - not allowed here: run at the parent's priority
            pass
    try:
        engine = factory()
    except Exception as exc:  # the parent reports it, as a failed in-process load would be
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    # the loaded engine (KB, trees, lexicon: some 500,000 objects) lives as long as the child:
    # out of the collector's reach, a full collection during a long note no longer walks it
    freeze_long_lived()
    conn.send(("ready", engine.info, engine.code_sets))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        job, method, args, kwargs, at = msg
        deadline = _ChildDeadline(at if at is not None else float("inf"), flag, job)
        try:
            with within(deadline):
                deadline.check()
                out = getattr(engine, method)(*args, **kwargs)
            conn.send(("ok", out))
        except Exception as exc:  # sent back and raised in the caller
            _send_error(conn, exc)


def _send_error(conn: Connection, exc: Exception) -> None:
    try:
        conn.send(("error", exc))
    except Exception:  # not picklable: its type only (a message could quote the note)
        conn.send(("error", EngineProcessError(f"the engine failed ({type(exc).__name__})")))


class _Child:
    """One engine process and the pipe to it; used by one call at a time."""

    def __init__(self, ctx: Any, factory: Callable[[], EngineLike], nice: int, name: str) -> None:
        self.conn, child_conn = ctx.Pipe()
        self.flag = ctx.Value("q", 0, lock=False)
        self.proc: BaseProcess = ctx.Process(
            target=_child_main, args=(child_conn, self.flag, factory, nice), name=name, daemon=True
        )
        self.proc.start()
        child_conn.close()
        self.jobs = itertools.count(1)
        self.dead = False

    def ready(self, timeout_s: float) -> tuple[ModelInfo, dict[str, str]]:
        """Wait for the child's engine to load; its model info and code-set versions."""
        end = time.monotonic() + timeout_s
        while not self.conn.poll(_POLL_S):
            if not self.proc.is_alive():
                self.kill()
                raise EngineProcessError(
                    f"the engine process exited while loading (exit code {self.proc.exitcode})"
                )
            if time.monotonic() > end:
                self.kill()
                raise EngineProcessError(f"the engine process did not load in {timeout_s:g} s")
        try:
            msg = self.conn.recv()
        except (EOFError, OSError):
            self.kill()
            raise EngineProcessError("the engine process exited while loading") from None
        if msg[0] != "ready":
            self.kill()
            raise EngineProcessError(str(msg[1]))
        return msg[1], msg[2]

    def call(
        self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], grace_s: float
    ) -> Any:
        """``method(*args, **kwargs)`` on the child's engine under the caller's deadline."""
        deadline = current_deadline()
        job = next(self.jobs)
        try:
            self.conn.send((job, method, args, kwargs, deadline.at if deadline else None))
        except OSError:  # the child is gone (its end of the pipe closed)
            self.kill()
            raise EngineProcessError("the engine process died before the call") from None
        stopped_at: float | None = None  # when the deadline passed or the call was cancelled
        while not self.conn.poll(_POLL_S):
            if not self.proc.is_alive():
                self.dead = True
                raise EngineProcessError(
                    f"the engine process died during the call (exit code {self.proc.exitcode})"
                )
            if deadline is None:
                continue
            now = time.monotonic()
            if stopped_at is None and (deadline.cancelled or now > deadline.at):
                stopped_at = now
                self.flag.value = job  # the child stops at its engine's next stage
            if stopped_at is not None and now - stopped_at > grace_s:
                log.warning(
                    "engine process %s did not stop %.0f s past its deadline: killed, replaced",
                    self.proc.pid,
                    grace_s,
                )
                self.kill()
                raise DeadlineExceeded(deadline.reason or "deadline passed")
        try:
            status, payload = self.conn.recv()
        except (EOFError, OSError):
            self.kill()
            raise EngineProcessError("the engine process died during the call") from None
        if status == "ok":
            return payload
        raise payload

    def close(self) -> None:
        if not self.dead and self.proc.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.conn.close()
        self.proc.join(2)
        if self.proc.is_alive():
            self.kill()

    def kill(self) -> None:
        self.dead = True
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)


def _close_all(children: list[_Child]) -> None:
    for child in list(children):
        try:
            child.close()
        except Exception:  # closing is best effort: never raise at shutdown or collection
            pass


class ProcessEngine:
    """An ``EngineLike`` whose engine calls run in ``processes`` child processes."""

    def __init__(
        self,
        factory: Callable[[], EngineLike],
        processes: int = 1,
        *,
        kb_path: Path | None = None,
        start_timeout_s: float = 900.0,
        kill_grace_s: float = 5.0,
        nice: int = 5,
    ) -> None:
        self._factory = factory
        self._ctx = mp.get_context("spawn")  # a fresh interpreter: no locks or threads copied
        self._kb_path = kb_path
        self._kb: Any = None
        self._start_timeout_s = start_timeout_s
        self.kill_grace_s = kill_grace_s
        self._nice = nice
        self._names = itertools.count(1)
        self._children: list[_Child] = []
        self._idle: queue.SimpleQueue[_Child] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.closed = False
        self.replaced = 0  # children replaced after dying or being killed
        self._finalizer = weakref.finalize(self, _close_all, self._children)
        started = [self._spawn() for _ in range(max(1, processes))]
        try:
            first = [c.ready(start_timeout_s) for c in started]
        except Exception:
            _close_all(started)
            raise
        self._info, self._code_sets = first[0]
        for c in started:
            self._idle.put(c)

    # -- EngineLike ---------------------------------------------------------------------------
    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def code_sets(self) -> dict[str, str]:
        kb = self.kb
        return dict(kb.versions()) if kb is not None else dict(self._code_sets)

    @property
    def kb(self) -> Any:
        """The knowledge base, opened in this process (lookups need no engine process)."""
        if self._kb is None and self._kb_path is not None:
            from clinicode.kb import open_kb

            with self._lock:
                if self._kb is None:
                    self._kb = open_kb(self._kb_path)
        return self._kb

    @property
    def pids(self) -> list[int]:
        """The live engine processes."""
        return [c.proc.pid for c in self._children if c.proc.pid and c.proc.is_alive()]

    def suggest(
        self,
        text: str,
        setting: str = "outpatient",
        *,
        systems: list[str] | None = None,
        top_k: int | None = None,
    ) -> SuggestResult:
        out: SuggestResult = self._call(
            "suggest", (text, setting), {"systems": systems, "top_k": top_k}
        )
        return out

    def suggest_many(
        self,
        texts: Sequence[str],
        setting: str = "outpatient",
        *,
        systems: list[str] | None = None,
        top_k: int | None = None,
    ) -> list[SuggestResult]:
        out: list[SuggestResult] = self._call(
            "suggest_many", (list(texts), setting), {"systems": systems, "top_k": top_k}
        )
        return out

    def warm_up(self) -> None:
        """The children warm their engines up as they load."""

    def close(self) -> None:
        """End the engine processes (at shutdown, or when another pack was swapped in)."""
        self.closed = True
        self._finalizer()

    # -- machinery ----------------------------------------------------------------------------
    def _spawn(self) -> _Child:
        child = _Child(
            self._ctx, self._factory, self._nice, f"clinicode-engine-{next(self._names)}"
        )
        with self._lock:
            self._children.append(child)
        return child

    def _take(self) -> _Child:
        """A free child, waiting for one within the caller's deadline."""
        deadline = current_deadline()
        while True:
            if self.closed:
                raise EngineProcessError("the engine was closed (another pack was swapped in)")
            try:
                return self._idle.get(timeout=_POLL_S * 4)
            except queue.Empty:
                if deadline is not None:
                    deadline.check()

    def _call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        child = self._take()
        try:
            return child.call(method, args, kwargs, self.kill_grace_s)
        finally:
            if child.dead:
                self._replace(child)
            else:
                self._idle.put(child)

    def _replace(self, dead: _Child) -> None:
        """Start a child in place of ``dead``, in the background (it loads its engine)."""
        with self._lock:
            if dead in self._children:
                self._children.remove(dead)
        self.replaced += 1
        if self.closed:
            return

        def start() -> None:
            try:
                child = self._spawn()
                child.ready(self._start_timeout_s)
            except Exception as exc:  # retried on the next death; calls wait meanwhile
                log.error("engine process could not be replaced: %s", exc)
                return
            if self.closed:
                child.close()
            else:
                self._idle.put(child)

        threading.Thread(target=start, name="clinicode-engine-replace", daemon=True).start()


@dataclass(frozen=True)
class ProcessEngineFactory:
    """The holder's factory in process mode: a :class:`ProcessEngine` over ``inner``."""

    inner: Callable[[], EngineLike]
    processes: int = 1
    kb_path: Path | None = None
    kill_grace_s: float = 5.0
    nice: int = 5

    def __call__(self) -> ProcessEngine:
        return ProcessEngine(
            self.inner,
            self.processes,
            kb_path=self.kb_path,
            kill_grace_s=self.kill_grace_s,
            nice=self.nice,
        )
