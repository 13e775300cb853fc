"""A small fake engine implementing the engine contract, and an app + client built on it.

The fake finds a handful of terms by regular expression, with exact offsets and a crude
negation check, so the service's behaviour (evidence offsets, suppressed codes, feedback,
export) is tested without the real model. ``FakeEngine`` is also used by
``tests/serve/server_main.py`` and ``bench/bench_api_load.py`` (they load this file by path).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clinicode.schema import CodeSuggestion, Evidence, Mention, ModelInfo, SuggestResult

TERMS: dict[str, tuple[str, str, str]] = {
    # term regex: (system, code, title)
    r"type 2 diabetes( mellitus)?": (
        "ICD-10-CM",
        "E11.9",
        "Type 2 diabetes mellitus without complications",
    ),
    r"hypertension": ("ICD-10-CM", "I10", "Essential (primary) hypertension"),
    r"pneumonia": ("ICD-10-CM", "J18.9", "Pneumonia, unspecified organism"),
    r"fever": ("ICD-10-CM", "R50.9", "Fever, unspecified"),
    r"chest pain": ("ICD-10-CM", "R07.9", "Chest pain, unspecified"),
    r"abdominal pain": ("ICD-10-CM", "R10.9", "Unspecified abdominal pain"),
    r"appendectomy": (
        "ICD-10-PCS",
        "0DTJ4ZZ",
        "Resection of Appendix, Percutaneous Endoscopic Approach",
    ),
}
_NEG = re.compile(r"\b(no|denies|without|negative for)\b[^.;\n]{0,40}$", re.I)
CODE_SETS = {"ICD-10-CM": "FY2026", "ICD-10-PCS": "FY2026"}  # as ``kb.versions()`` says


class FakeEngine:
    """Implements ``suggest``, ``suggest_many``, ``info``, ``code_sets``, ``kb``."""

    def __init__(self, kb: Any = None, delay_s: float = 0.0) -> None:
        self.kb = kb
        self.delay_s = delay_s
        self.info = ModelInfo(name="fake-engine", version="0.0.1-test", threshold=0.5)
        self.code_sets = dict(CODE_SETS)
        self.calls = 0

    def suggest(
        self,
        text: str,
        setting: str = "outpatient",
        *,
        systems: list[str] | None = None,
        top_k: int | None = None,
    ) -> SuggestResult:
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        found: dict[tuple[str, str], CodeSuggestion] = {}
        suppressed: list[CodeSuggestion] = []
        mentions: list[Mention] = []
        for pattern, (system, code, title) in TERMS.items():
            if systems and system not in systems:
                continue
            for m in re.finditer(pattern, text, re.I):
                negated = bool(_NEG.search(text[max(0, m.start() - 60) : m.start()]))
                assertion = "negated" if negated else "present"
                ev = Evidence(start=m.start(), end=m.end(), text=m.group(0), assertion=assertion)
                mentions.append(
                    Mention(
                        start=m.start(),
                        end=m.end(),
                        text=m.group(0),
                        normalized=m.group(0).lower(),
                        kind="condition",
                        assertion=assertion,
                    )
                )
                sid = hashlib.sha1(f"{text}|{system}|{code}".encode()).hexdigest()[:16]
                if negated:
                    suppressed.append(
                        CodeSuggestion(
                            suggestion_id=sid + "n",
                            system=system,
                            code=code,
                            title=title,
                            score=0.05,
                            status="suppressed",
                            evidence=[ev],
                            reason="negated mention",
                            explanation=[f"'{m.group(0)}' is negated"],
                        )
                    )
                    continue
                sugg = found.get((system, code))
                if sugg is None:
                    sugg = found[(system, code)] = CodeSuggestion(
                        suggestion_id=sid,
                        system=system,
                        code=code,
                        title=title,
                        score=0.9,
                        explanation=[f"'{m.group(0)}' matches the term for {code}"],
                    )
                sugg.evidence.append(ev)
        codes = sorted(found.values(), key=lambda s: s.evidence[0].start)
        for i, s in enumerate(codes, start=1):
            s.rank = i
        keep = codes[:top_k] if top_k else codes
        candidates = [s.model_copy(update={"status": "candidate"}) for s in codes[len(keep) :]]
        return SuggestResult(
            model=self.info,
            code_sets=self.code_sets,
            setting=setting,  # type: ignore[arg-type]
            codes=keep,
            candidates=candidates,
            suppressed=suppressed,
            mentions=mentions,
        )

    def suggest_many(
        self, texts: list[str], setting: str = "outpatient", **kw: Any
    ) -> list[SuggestResult]:
        return [self.suggest(t, setting, **kw) for t in texts]


USER_KEY = "test-user-key-0123456789"
ADMIN_KEY = "test-admin-key-0123456789"


@pytest.fixture
def settings(tmp_path: Path, kb_path: Path) -> Any:
    from clinicode.settings import Settings

    data = tmp_path / "data"
    data.mkdir()
    (data / "kb.sqlite").symlink_to(kb_path)
    return Settings(
        data_dir=data,
        api_keys=USER_KEY,  # type: ignore[arg-type]
        admin_api_keys=ADMIN_KEY,  # type: ignore[arg-type]
        model_load_timeout_s=10,
    )


@pytest.fixture
def engine(kb: Any) -> FakeEngine:
    return FakeEngine(kb=kb)


@pytest.fixture
def client(settings: Any, engine: FakeEngine) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from clinicode.serve.app import create_app

    app = create_app(settings, engine_factory=lambda: engine)
    with TestClient(app) as c:
        c.headers["X-API-Key"] = USER_KEY
        yield c


NOTE = (
    "HPI: 58-year-old man with type 2 diabetes mellitus, on metformin.\n"
    "Assessment: hypertension, controlled. No pneumonia on chest X-ray.\n"
)


@pytest.fixture
def note() -> str:
    return NOTE


@pytest.fixture
def admin_key() -> str:
    return ADMIN_KEY


@pytest.fixture
def user_key() -> str:
    return USER_KEY
