"""The default pack's synthetic notes: deterministic, labeled with real codes, with distractors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clinicode.models.candidates import CandidatePipeline, score_weights
from clinicode.models.types import Candidate
from clinicode.training.default_pack import (
    fit_pre_rank_weights,
    synthetic_notes,
    synthetic_notes_named,
)


def test_synthetic_notes_are_deterministic_and_labeled(kb: Any) -> None:
    a = synthetic_notes(kb, n_notes=30, seed=3)
    b = synthetic_notes(kb, n_notes=30, seed=3)
    assert [n.text for n in a] == [n.text for n in b]
    assert [n.text for n in a] != [n.text for n in synthetic_notes(kb, n_notes=30, seed=4)]
    for note in a:
        assert 2 <= len(note.codes) <= 7
        for system, code in note.codes:
            assert system == "ICD-10-CM"
            assert kb.get(code, system) is not None
            assert code[0] not in "VWXY"
    # some notes carry negated or family-history distractors whose codes are not labels
    assert any(("No evidence of" in n.text or "Denies" in n.text) for n in a)


def test_distractor_codes_are_named_and_apart_from_labels(kb: Any) -> None:
    pairs = synthetic_notes_named(kb, n_notes=40, seed=5)
    assert [n.text for n, _ in pairs] == [n.text for n in synthetic_notes(kb, n_notes=40, seed=5)]
    assert any(named for _, named in pairs)
    for note, named in pairs:
        labels = {c for _, c in note.codes}
        assert not labels & set(named)
        for code in named:
            assert kb.get(code, "ICD-10-CM") is not None


def test_pre_rank_weights_favour_the_named_codes() -> None:
    named = Candidate(system="ICD-10-CM", code="A00.0", features={"lex_max": 0.9, "exact": 1.0})
    other = Candidate(system="ICD-10-CM", code="B00.0", features={"lex_max": 0.3, "exact": 0.0})
    generated = [[named, other]] * 20
    positives = [{"ICD-10-CM:A00.0"}] * 20
    w = fit_pre_rank_weights(generated, positives)
    assert set(w) == {"lex_max", "exact"}  # only features the candidates carry
    assert w["lex_max"] > 0 and w["exact"] > 0
    with pytest.raises(ValueError):
        fit_pre_rank_weights(generated, [set()] * 20)


def test_pipeline_weights_round_trip(tmp_path: Path) -> None:
    pipe = CandidatePipeline((), weights={"lex_max": 2.0})
    assert pipe.score_weights_() == {"lex_max": 2.0}
    pipe.save(tmp_path)
    assert CandidatePipeline.load(tmp_path).score_weights_() == {"lex_max": 2.0}
    assert CandidatePipeline(("lexical",)).score_weights_() == score_weights(("lexical",))


def test_pack_is_stale_when_the_kb_or_the_nlp_rules_change(kb: Any) -> None:
    from clinicode.training.default_pack import BUILDER_VERSION, nlp_fingerprint, stale_reason

    current = {
        "builder": BUILDER_VERSION,
        "kb_content": kb.content_fingerprint(),
        "nlp_resources": nlp_fingerprint(),
    }
    assert stale_reason(current, kb) is None
    assert "builder" in (stale_reason({**current, "builder": 1}, kb) or "")
    assert "KB" in (stale_reason({**current, "kb_content": "other"}, kb) or "")
    assert "NLP" in (stale_reason({**current, "nlp_resources": "other"}, kb) or "")
    # a pack built before the NLP rules were part of its key is rebuilt once
    assert stale_reason({"kb_content": kb.content_fingerprint()}, kb) is not None


class _Versions:
    def __init__(self, *systems: str) -> None:
        self.systems = systems

    def versions(self) -> dict[str, str]:
        return {s: "FY2026" for s in self.systems}


def test_pcs_generator_and_system_follow_the_kb() -> None:
    from clinicode.models.ranker import RoutedRanker
    from clinicode.training.default_pack import procedure_route, with_procedure_generators

    gens = ("lexical", "structure")
    assert with_procedure_generators(_Versions("ICD-10-CM"), gens) == gens
    with_pcs = _Versions("ICD-10-CM", "ICD-10-PCS")
    assert with_procedure_generators(with_pcs, gens) == (*gens, "pcs")
    assert with_procedure_generators(with_pcs, (*gens, "pcs")) == (*gens, "pcs")
    base = object()
    assert procedure_route(gens, ["a", "b"], base) == (["ICD-10-CM"], ["a", "b"], base)
    systems, names, ranker = procedure_route((*gens, "pcs"), ["a", "b"], base)
    assert systems == ["ICD-10-CM", "ICD-10-PCS"]
    assert names == ["a", "b", "pcs_hit", "pcs_score"]
    assert isinstance(ranker, RoutedRanker) and (ranker.route, ranker.score) == (2, 3)


def test_the_pack_fingerprint_covers_every_nlp_data_file() -> None:
    """A new NLP data file (attribute patterns, word lists moved out of Python) must mark
    default packs built before it stale, or a changed rule would leave an old pack in place."""
    from pathlib import Path

    import clinicode.nlp.resources as res
    from clinicode.training.default_pack import NLP_RESOURCE_FILES

    files = {p.name for p in Path(res.__file__).parent.glob("*.json")}
    assert set(NLP_RESOURCE_FILES) == files - {"demographics.json"}
