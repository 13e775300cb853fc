"""The engine: note text -> mentions -> candidates -> learned ranker -> guidelines -> result.

``clinicode.load(model_dir=None)`` returns an :class:`Engine` over a verified model pack
(``models.pack``); ``Engine.suggest(text)`` returns a :class:`clinicode.schema.SuggestResult`,
the same document ``clinicode suggest`` prints and ``POST /v1/suggest`` returns.

Every scoring step lives in ``models.scoring`` (:class:`~clinicode.models.scoring.ScoringPath`),
which ``clinicode evaluate`` and training call too, so what is evaluated is what is served.
Importing this module does no I/O.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from functools import lru_cache
from multiprocessing.pool import Pool
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from clinicode.errors import ClinicodeError, InputError
from clinicode.schema import SYSTEMS, ModelInfo, SuggestResult

if TYPE_CHECKING:
    from clinicode.kb import KnowledgeBase
    from clinicode.models.pack import ModelPack


class _BatchOptions(TypedDict):
    systems: Sequence[str] | None
    top_k: int | None
    benchmark: bool


# The engine a forked batch worker inherits (set in the parent just before its pool forks).
_FORK_ENGINE: Engine | None = None


def _worker_init() -> None:
    """Runs once in each forked batch worker: one BLAS/torch thread (the workers already use
    the cores) and the worker's own SQLite connections."""
    from clinicode.threads import one_thread

    one_thread()
    if _FORK_ENGINE is not None:
        _FORK_ENGINE.kb.after_fork()


def _worker_suggest(job: tuple[list[str], str, _BatchOptions]) -> list[SuggestResult]:
    texts, setting, kwargs = job
    assert _FORK_ENGINE is not None, "batch worker started without an engine"
    return _FORK_ENGINE.suggest_many(texts, setting, workers=1, **kwargs)


class Engine:
    """A loaded model pack with its NLP pipeline and code sets. Thread-safe for ``suggest``.

    The facade checks inputs, times calls and spreads offline batches over worker processes;
    every scoring step is :class:`clinicode.models.scoring.ScoringPath`'s, the same path that
    ``clinicode evaluate`` and training measure.
    """

    def __init__(self, pack: ModelPack, kb: KnowledgeBase, *, pack_dir: Path | None = None) -> None:
        from clinicode.models.scoring import ScoringPath

        self.pack = pack
        self.kb = kb
        self.pack_dir = pack_dir
        self.scoring = ScoringPath(pack, kb)
        self._lock = threading.Lock()
        self._pool: Pool | None = None  # forked batch workers (see ``suggest_many``)
        self._pool_size = 0
        self.systems: tuple[str, ...] = self.scoring.systems

    # -- contract ------------------------------------------------------------------------
    @property
    def info(self) -> ModelInfo:
        return self.scoring.info

    @property
    def code_sets(self) -> dict[str, str]:
        return self.kb.versions()

    def warm_up(self) -> None:
        """Load the NLP pipeline and the guideline layer now rather than on the first note."""
        self.scoring.warm_up()

    def suggest(
        self,
        text: str,
        setting: str = "outpatient",
        *,
        systems: Sequence[str] | None = None,
        top_k: int | None = None,
        benchmark: bool = False,
    ) -> SuggestResult:
        return self.suggest_many(
            [text], setting, systems=systems, top_k=top_k, benchmark=benchmark
        )[0]

    def suggest_many(
        self,
        texts: Sequence[str],
        setting: str = "outpatient",
        *,
        systems: Sequence[str] | None = None,
        top_k: int | None = None,
        benchmark: bool = False,
        workers: int = 1,
    ) -> list[SuggestResult]:
        """Suggestions for a batch of notes (mentions and note classifier run batched).

        ``workers`` > 1 spreads a batch over that many forked worker processes (POSIX only),
        each holding a copy-on-write view of this engine: for offline batches on several cores.
        The pool is kept for later calls; :meth:`close` ends it. Results are identical.
        """
        t0 = time.perf_counter()
        texts = list(texts)
        wanted = _check_inputs(texts, setting, systems, top_k, workers)
        if workers > 1 and len(texts) > 1:
            kwargs = _BatchOptions(systems=systems, top_k=top_k, benchmark=benchmark)
            return self._suggest_parallel(texts, setting, workers, kwargs)
        out = self.scoring.suggest_many(
            texts, setting, systems=wanted, top_k=top_k, benchmark=benchmark
        )
        elapsed = (time.perf_counter() - t0) * 1000 / max(len(texts), 1)
        for r in out:
            r.elapsed_ms = round(elapsed, 2)
        return out

    def _suggest_parallel(
        self,
        texts: list[str],
        setting: str,
        workers: int,
        kwargs: _BatchOptions,
    ) -> list[SuggestResult]:
        import multiprocessing as mp

        global _FORK_ENGINE
        if "fork" not in mp.get_all_start_methods():
            raise InputError("workers > 1 needs the fork start method (Linux or macOS)")
        with self._lock:
            if self._pool is None or self._pool_size != workers:
                if self._pool is not None:
                    self._pool.terminate()
                self.warm_up()  # the workers inherit the loaded NLP pipeline and layer
                _FORK_ENGINE = self
                self._pool = mp.get_context("fork").Pool(workers, initializer=_worker_init)
                self._pool_size = workers
            pool = self._pool
        size = max(1, -(-len(texts) // (workers * 2)))  # two chunks per worker, in order
        jobs = [(texts[i : i + size], setting, kwargs) for i in range(0, len(texts), size)]
        return [r for chunk in pool.map(_worker_suggest, jobs) for r in chunk]

    def close(self) -> None:
        """End the batch worker processes, if any were started."""
        with self._lock:
            if self._pool is not None:
                self._pool.terminate()
                self._pool.join()
                self._pool = None
                self._pool_size = 0


def _check_inputs(
    texts: list[str],
    setting: str,
    systems: Sequence[str] | None,
    top_k: int | None,
    workers: int,
) -> tuple[str, ...]:
    """Refuse bad arguments with a message that says what to send; the systems wanted."""
    for t in texts:
        if not isinstance(t, str) or not t.strip():
            raise InputError("the note text is empty")
    if setting not in ("inpatient", "outpatient"):
        raise InputError(f"setting must be inpatient or outpatient, not {setting!r}")
    wanted = tuple(systems) if systems else SYSTEMS
    unknown = [s for s in wanted if s not in SYSTEMS]
    if unknown:
        raise InputError(f"unknown code system {unknown[0]!r}; choose from {', '.join(SYSTEMS)}")
    if top_k is not None and top_k < 1:
        raise InputError("top_k must be at least 1")
    if workers < 1:
        raise InputError("workers must be at least 1")
    return wanted


# --------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------
def _resolve_dir(model_dir: str | Path | None) -> Path:
    from clinicode.models.pack_registry import serving_pack_dir
    from clinicode.settings import get_settings

    if model_dir is not None:
        return Path(model_dir).expanduser()
    return serving_pack_dir(get_settings())  # the promoted pack, else the default one


@lru_cache(maxsize=4)
def _load_cached(path: str, kb_path: str | None) -> Engine:
    from clinicode.gcpause import gc_paused
    from clinicode.kb import open_kb
    from clinicode.models import pack as pack_mod

    kb = open_kb(Path(kb_path) if kb_path else None)
    p = Path(path)
    if not (p / pack_mod.MANIFEST).is_file():
        raise ClinicodeError(
            f"no model pack at {p}; run `clinicode setup` (or `make install`) to build the "
            "default pack, or pass --model DIR"
        )
    with gc_paused():
        return Engine(pack_mod.load(p, kb=kb), kb, pack_dir=p)


def load(
    model_dir: str | Path | None = None, *, kb_path: str | Path | None = None, cache: bool = True
) -> Engine:
    """An :class:`Engine` for the pack in ``model_dir`` (default: the settings' default pack)."""
    path = _resolve_dir(model_dir).resolve()
    kb = str(Path(kb_path).resolve()) if kb_path is not None else None
    if cache:
        return _load_cached(str(path), kb)
    _load_cached.cache_clear()
    return _load_cached(str(path), kb)
