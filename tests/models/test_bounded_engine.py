"""Bounded work per note through the engine: evidence cap, phrase cap, deadline, offsets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clinicode.deadline import Deadline, DeadlineExceeded, within
from tests.training.tiny_pack import build_tiny_pack


@pytest.fixture(scope="module")
def engine(kb: Any, kb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from clinicode.engine import load

    out = tmp_path_factory.mktemp("packs") / "tiny"
    build_tiny_pack(kb, out)
    return load(out, kb_path=kb_path, cache=False)


def _all(res: Any) -> list[Any]:
    return [*res.codes, *res.candidates, *res.suppressed]


def _scored_with(text: str, n: int) -> Any:
    """A note whose one candidate (I10) points at ``n`` mentions."""
    import numpy as np

    from clinicode.models.features import NoteCandidates
    from clinicode.models.scoring import Scored
    from clinicode.models.types import Candidate
    from clinicode.schema import Mention

    step = len(text) // n
    mentions = [
        Mention(start=i * step, end=i * step + 12, text=text[i * step : i * step + 12],
                normalized="hypertension", kind="condition")
        for i in range(n)
    ]  # fmt: skip
    cand = Candidate(system="ICD-10-CM", code="I10", mention_ids=list(range(n)))
    nc = NoteCandidates(keys=["ICD-10-CM:I10"], feats=[{}], candidates={"ICD-10-CM:I10": cand})
    return Scored(text, mentions, mentions, nc, np.array([0.9]))


def test_evidence_per_code_is_capped_with_a_warning(engine: Any) -> None:
    text = "Hypertension. " * 12
    path = engine.scoring
    full = path.suggestions(_scored_with(text, 12), ["ICD-10-CM"])
    assert len(full[0].evidence) == 12
    capped = _scored_with(text, 12)
    path.max_evidence = 3
    try:
        got = path.suggestions(capped, ["ICD-10-CM"])
    finally:
        path.max_evidence = 20
    assert [(e.start, e.text) for e in got[0].evidence] == [
        (e.start, e.text) for e in full[0].evidence[:3]
    ]
    assert any("more than 3 evidence spans" in w for w in capped.limits)


def test_repeated_mentions_keep_exact_offsets_and_unique_evidence(engine: Any) -> None:
    text = "pneumonia, hypertension; " * 300
    res = engine.suggest(text)
    assert len(res.mentions) == 600
    for m in res.mentions:
        assert text[m.start : m.end] == m.text
    for s in _all(res):
        spans = [(e.start, e.end) for e in s.evidence]
        assert len(spans) == len(set(spans)) <= 20
        assert all(text[e.start : e.end] == e.text for e in s.evidence)


def test_ordinary_note_has_no_bound_warnings(engine: Any) -> None:
    res = engine.suggest("Type 2 diabetes mellitus and hypertension. Denies chest pain.")
    assert res.warnings == []


def test_phrase_fallback_is_capped_with_a_warning(engine: Any) -> None:
    from clinicode.models import scoring
    from clinicode.models.candidate_rows import phrase_fallback

    text = "zorblax quintoid " * 2000  # no mention: raw-text phrases stand in
    res = engine.suggest(text)
    n = len(phrase_fallback(text))
    assert n > scoring.MAX_PHRASES
    assert any(f"gave {n} phrases" in w for w in res.warnings)


def test_a_passed_deadline_stops_the_engine(engine: Any) -> None:
    with within(Deadline.after(-1.0)), pytest.raises(DeadlineExceeded):
        engine.suggest("Hypertension.")
    assert engine.suggest("Hypertension.").codes  # no deadline: it runs
