"""Loads the engine once per worker, in the background, and hands it to the routes.

``/health/ready`` reports the state; routes that need the model get 503 with the reason while
it is loading or when it could not be loaded (say, no model pack built yet). After a failure
the next request past ``RETRY_AFTER_S`` tries again, so building a pack needs no restart.

:meth:`EngineHolder.reload` switches to a newly promoted pack without downtime: the new engine
loads in a background thread while the old one keeps serving, then the reference is swapped
(requests in flight finish on the engine they were handed).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal, Protocol

from clinicode.schema import ModelInfo, SuggestResult

log = logging.getLogger("clinicode.serve")

RETRY_AFTER_S = 30.0


class EngineLike(Protocol):
    """What the service needs of ``clinicode.engine.Engine``."""

    @property
    def info(self) -> ModelInfo: ...

    @property
    def code_sets(self) -> dict[str, str]: ...

    @property
    def kb(self) -> Any: ...

    def suggest(
        self,
        text: str,
        setting: str = "outpatient",
        *,
        systems: list[str] | None = None,
        top_k: int | None = None,
    ) -> SuggestResult: ...

    def suggest_many(
        self,
        texts: list[str],
        setting: str = "outpatient",
        *,
        systems: list[str] | None = None,
        top_k: int | None = None,
    ) -> list[SuggestResult]: ...


class EngineUnavailable(Exception):
    """The model is loading or failed to load; the message says which and what to do."""


class EngineHolder:
    def __init__(
        self, factory: Callable[[], EngineLike], *, wait_s: float, concurrency: int
    ) -> None:
        self._factory = factory
        self._wait_s = wait_s
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._slots = threading.BoundedSemaphore(concurrency)
        self.engine: EngineLike | None = None
        self.error: str | None = None
        self.failed_at = 0.0
        self.load_seconds: float | None = None
        self._reloading: threading.Thread | None = None
        self.reload_error: str | None = None
        self.reloads = 0

    @property
    def status(self) -> Literal["idle", "loading", "ready", "failed"]:
        if self.engine is not None:
            return "ready"
        if self.error is not None:
            return "failed"
        return "loading" if self._thread is not None else "idle"

    def start(self) -> None:
        """Start loading in a background thread (no-op while loading or once loaded)."""
        with self._lock:
            if self.engine is not None or (self._thread is not None and not self._done.is_set()):
                return
            if self.error is not None and time.monotonic() - self.failed_at < RETRY_AFTER_S:
                return
            self._done.clear()
            self._thread = threading.Thread(
                target=self._load, name="clinicode-model-load", daemon=True
            )
            self._thread.start()

    def _load(self) -> None:
        t0 = time.perf_counter()
        try:
            engine = self._factory()
        except Exception as exc:  # any failure leaves the service up, not ready
            self.error = f"{type(exc).__name__}: {exc}"
            self.failed_at = time.monotonic()
            log.warning("model pack could not be loaded: %s", self.error)
        else:
            self.engine, self.error = engine, None
            self.load_seconds = time.perf_counter() - t0
            log.info(
                "model %s %s loaded in %.1fs",
                engine.info.name,
                engine.info.version,
                self.load_seconds,
            )
        finally:
            self._done.set()

    def get(self) -> EngineLike:
        """The loaded engine, waiting up to ``wait_s`` for a load in progress."""
        if self.engine is not None:
            return self.engine
        self.start()
        self._done.wait(self._wait_s)
        if self.engine is not None:
            return self.engine
        if self.error is not None:
            raise EngineUnavailable(
                f"the model pack could not be loaded ({self.error}); build one with "
                "`clinicode setup` or set CLINICODE_MODEL_DIR, then retry"
            )
        raise EngineUnavailable("the model is still loading; retry shortly")

    def reload(self) -> bool:
        """Load the engine again from the factory (say, a newly promoted pack) in a background
        thread, keeping the current engine serving until the new one is ready, then swap the
        reference. A failed load keeps the old engine (``reload_error`` says why). Returns
        False when a reload is already running (it will pick up the latest pack anyway)."""
        if self.engine is None:  # nothing serves yet: the first load reads the new pack
            self.start()
            return True
        with self._lock:
            if self._reloading is not None and self._reloading.is_alive():
                return False
            self._reloading = threading.Thread(
                target=self._swap, name="clinicode-model-reload", daemon=True
            )
            self._reloading.start()
            return True

    def _swap(self) -> None:
        t0 = time.perf_counter()
        try:
            engine = self._factory()
        except Exception as exc:  # the old engine keeps serving
            self.reload_error = f"{type(exc).__name__}: {exc}"
            log.warning("new model pack could not be loaded, keeping the old: %s", exc)
            return
        self.engine, self.reload_error = engine, None  # one reference store: atomic
        self.reloads += 1
        self.load_seconds = time.perf_counter() - t0
        log.info("switched to model %s %s", engine.info.name, engine.info.version)

    def wait_reload(self, timeout: float | None = None) -> None:
        """Wait for a reload in progress (tests and the bench)."""
        thread = self._reloading
        if thread is not None:
            thread.join(timeout)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Bounds how many engine calls run at once in this worker."""
        with self._slots:
            yield
