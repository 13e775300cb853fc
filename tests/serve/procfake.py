"""A fake engine for the engine-process tests, importable by name in a spawned child.

``test_engine_process.py`` puts this folder on ``sys.path`` (a spawned child gets the parent's
path) and pickles :class:`FakeFactory`. The engine's ``suggest`` answers at once, except for
notes holding a marker: ``BUSY`` works the CPU (checking its deadline, as the scoring path
does between stages) for ``busy_s``; ``STUCK`` works it without checking; ``DIE`` ends the
process. Every result names the process that computed it in its warnings.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from clinicode.deadline import check_deadline
from clinicode.schema import ModelInfo, SuggestResult


def _spin(seconds: float, check: bool) -> None:
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += sum(i * i for i in range(2000))  # pure-Python work: holds this process's GIL
        if check:
            check_deadline()


class FakeProcessEngine:
    def __init__(self, busy_s: float) -> None:
        self.busy_s = busy_s
        self.info = ModelInfo(name="fake-process-engine", version="0.0.1-test", threshold=0.5)
        self.code_sets = {"ICD-10-CM": "FY2026"}
        self.kb = None

    def suggest(self, text: str, setting: str = "outpatient", **_kw: Any) -> SuggestResult:
        if "DIE" in text:
            os._exit(3)
        if "BUSY" in text or "STUCK" in text:
            _spin(self.busy_s, check="BUSY" in text)
        return SuggestResult(
            model=self.info,
            code_sets=self.code_sets,
            setting=setting,  # type: ignore[arg-type]
            warnings=[f"pid {os.getpid()}"],
        )

    def suggest_many(
        self, texts: list[str], setting: str = "outpatient", **kw: Any
    ) -> list[SuggestResult]:
        return [self.suggest(t, setting, **kw) for t in texts]


@dataclass(frozen=True)
class FakeFactory:
    busy_s: float = 60.0

    def __call__(self) -> FakeProcessEngine:
        return FakeProcessEngine(self.busy_s)
