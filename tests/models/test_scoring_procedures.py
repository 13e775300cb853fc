"""How the scoring path serves the ranker's procedure codes: a partial ICD-10-PCS code (its
first four characters) is never a suggested code, and ICD-10-PCS is suggested for inpatient
notes only (outpatient: listed as candidates)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from clinicode.models.scoring import ScoringPath
from clinicode.models.types import GuidelineResult
from clinicode.schema import CodeSuggestion


class _Layer:
    def apply(self, ranked: list[CodeSuggestion], mentions: Any, **kw: Any) -> GuidelineResult:
        return GuidelineResult(codes=list(ranked), candidates=[], suppressed=[])


def _path() -> ScoringPath:
    pack = SimpleNamespace(
        config={"feature_names": []}, threshold=0.5, version="v", name="n", candidates=None
    )
    path = ScoringPath(pack, kb=SimpleNamespace(), guidelines=_Layer())  # type: ignore[arg-type]
    path._rule_coders = []
    return path


def _serve(setting: str) -> dict[str, str]:
    ranked = [
        CodeSuggestion(system="ICD-10-PCS", code="BW21", title="", score=0.9),
        CodeSuggestion(system="ICD-10-PCS", code="BW03ZZZ", title="", score=0.9),
        CodeSuggestion(system="ICD-10-PCS", code="0DJD8ZZ", title="", score=0.2),
        CodeSuggestion(system="CPT", code="71046", title="", score=0.9),
    ]
    scored = SimpleNamespace(text="note", mentions=[], digest="d")
    codes, cands, _ = _path().apply_guidelines(ranked, scored, setting, benchmark=False)  # type: ignore[arg-type]
    out = {s.code: "code" for s in codes}
    out.update({s.code: "candidate" for s in cands})
    return out


def test_partial_pcs_code_is_a_candidate_even_above_the_threshold() -> None:
    served = _serve("inpatient")
    assert served == {
        "BW21": "candidate",
        "BW03ZZZ": "code",
        "0DJD8ZZ": "candidate",
        "71046": "code",
    }


def test_outpatient_notes_get_no_suggested_pcs_code() -> None:
    served = _serve("outpatient")
    assert served["BW03ZZZ"] == "candidate" and served["BW21"] == "candidate"
    assert served["71046"] == "code"
