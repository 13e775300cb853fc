"""Engine contract: load, suggest, suggest_many, ids, errors, per-system ranking."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from clinicode.errors import ClinicodeError, InputError
from clinicode.schema import SuggestResult
from tests.training.tiny_pack import build_tiny_pack


@pytest.fixture(scope="module")
def engine(kb: Any, kb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from clinicode.engine import load

    out = tmp_path_factory.mktemp("packs") / "tiny"
    build_tiny_pack(kb, out)
    return load(out, kb_path=kb_path)


def test_suggest_ranks_the_codes_of_similar_notes(engine: Any) -> None:
    res = engine.suggest("Type 2 diabetes mellitus, poorly controlled, and hypertension.")
    assert isinstance(res, SuggestResult)
    ranked = [s.code for s in res.codes + res.candidates if s.system == "ICD-10-CM"]
    assert set(ranked[:3]) >= {"E11.9", "I10"}
    for s in res.codes + res.candidates:
        assert 0.0 <= s.score <= 1.0
        assert s.suggestion_id
    assert res.model.name == "tiny" and res.code_sets == engine.code_sets


def test_procedures_ranked_separately(engine: Any) -> None:
    res = engine.suggest("Appendicitis; the appendix was removed laparoscopically.")
    pcs = [s for s in res.codes + res.candidates if s.system == "ICD-10-PCS"]
    assert pcs and pcs[0].code == "0DTJ4ZZ"
    assert min(s.rank for s in pcs) == 1  # ranks restart per system
    assert all(s.status == "candidate" for s in res.candidates)
    assert all(s.status in ("suggested", "needs_query") for s in res.codes)


def test_ids_are_deterministic_and_batch_matches_single(engine: Any) -> None:
    text = "Pneumonia with fever."
    a = engine.suggest(text)
    b = engine.suggest_many([text, "Asthma, wheezing."])[0]
    ids_a = {(s.system, s.code): s.suggestion_id for s in a.codes + a.candidates}
    ids_b = {(s.system, s.code): s.suggestion_id for s in b.codes + b.candidates}
    assert ids_a == ids_b
    other = engine.suggest(text + " ")
    assert {s.suggestion_id for s in other.codes + other.candidates}.isdisjoint(ids_a.values())


@pytest.mark.skipif(sys.platform == "win32", reason="worker processes need fork")
def test_worker_processes_give_the_same_results(engine: Any) -> None:
    texts = [
        "Pneumonia with fever.",
        "Asthma, wheezing.",
        "Appendicitis, appendectomy.",
        "Type 2 diabetes mellitus. Denies chest pain.",
        "Fractured left radius after a fall.",
    ]
    serial = engine.suggest_many(texts)
    try:
        parallel = engine.suggest_many(texts, workers=2)
        again = engine.suggest_many(texts[:2], workers=2)  # the pool is reused
    finally:
        engine.close()
    assert engine._pool is None

    def strip(r: Any) -> dict[str, Any]:
        return dict(r.model_dump(exclude={"elapsed_ms"}))

    assert [strip(r) for r in parallel] == [strip(r) for r in serial]
    assert [strip(r) for r in again] == [strip(r) for r in serial[:2]]
    with pytest.raises(InputError, match="workers"):
        engine.suggest_many(texts, workers=0)


def test_system_filter_and_top_k(engine: Any) -> None:
    res = engine.suggest("Appendicitis, appendectomy.", systems=["ICD-10-PCS"], top_k=1)
    assert all(s.system == "ICD-10-PCS" for s in res.codes + res.candidates)
    assert len(res.candidates) <= 1


def test_bad_input(engine: Any) -> None:
    with pytest.raises(InputError):
        engine.suggest("   \n")
    with pytest.raises(InputError):
        engine.suggest("fever", setting="emergency")
    with pytest.raises(InputError):
        engine.suggest("fever", systems=["SNOMED"])


def test_missing_pack_says_what_to_run(tmp_path: Path, kb_path: Path) -> None:
    from clinicode.engine import load

    with pytest.raises(ClinicodeError, match="clinicode setup"):
        load(tmp_path / "none", kb_path=kb_path)


def test_json_is_the_cli_document(engine: Any) -> None:
    res = engine.suggest("Essential hypertension.")
    again = SuggestResult.model_validate_json(res.model_dump_json())
    assert again.model == res.model


class _FixedCoder:
    """A plug-in rule coder: one PCS code with a query, one CPT code, and a diagnosis that the
    scoring path must ignore (diagnoses come from the ranker and the guidelines layer)."""

    name = "fixed"
    systems = ("ICD-10-PCS",)

    def __init__(self, kb: Any) -> None:
        self.kb = kb

    def code(self, text: str, mentions: list[Any], *, setting: str) -> list[Any]:
        from clinicode.schema import CodeSuggestion, Query

        if setting != "inpatient":
            return []
        return [
            CodeSuggestion(
                system="ICD-10-PCS",
                code="0DTJ4ZZ",
                title="Resection of Appendix, Percutaneous Endoscopic Approach",
                score=0.9,
                status="needs_query",
                query=Query(axis="approach", question="Approach not documented"),
                explanation=["rule: fixed"],
            ),
            CodeSuggestion(system="ICD-10-CM", code="A00.0", title="x", score=1.0),
        ]


def test_rule_coders_join_the_code_set_of_their_system(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clinicode.models import registry
    from clinicode.models.types import RuleCoder

    registry.register("rule_coder", "fixed", f"{__name__}:_FixedCoder")
    path = engine.scoring
    saved = path._rule_coders
    path._rule_coders = None
    try:
        # ICD-10-PCS is not loaded in this KB (CPT is: the E/M level coder runs)
        assert "fixed" not in {c.name for c in path.rule_coders()}
        path._rule_coders = None
        loaded = {**path.kb.versions(), "ICD-10-PCS": "FY2026"}
        monkeypatch.setattr(path.kb, "versions", lambda: loaded)
        assert all(isinstance(c, RuleCoder) for c in path.rule_coders())
        assert "fixed" in {c.name for c in path.rule_coders()}
        text = "Appendicitis; the appendix was removed laparoscopically."
        res = engine.suggest(text, setting="inpatient")
        pcs = [s for s in res.codes if s.system == "ICD-10-PCS"]
        assert [(s.code, s.status, s.explanation) for s in pcs] == [
            ("0DTJ4ZZ", "needs_query", ["rule: fixed"])
        ]
        assert pcs[0].suggestion_id and pcs[0].query is not None
        assert "0DTJ4ZZ" not in {s.code for s in res.candidates}  # the ranker's copy gave way
        assert ("ICD-10-CM", "A00.0") not in {(s.system, s.code) for s in res.codes}
        assert not [s for s in engine.suggest(text).codes if s.explanation == ["rule: fixed"]]
        only_cm = engine.suggest(text, setting="inpatient", systems=["ICD-10-CM"])
        assert not [s for s in only_cm.codes if s.system == "ICD-10-PCS"]
    finally:
        registry._TABLES["rule_coder"].pop("fixed")
        path._rule_coders = saved


def test_the_em_level_joins_the_cpt_codes_of_suggest(engine: Any) -> None:
    note = (
        "CC: f/u HTN and DM2\nHPI: 64 yo M established patient, no hypoglycemia.\n"
        "Labs: A1c reviewed - 6.9%.\nAssessment/Plan:\n1. HTN - stable. Increase lisinopril.\n"
        "2. DM2 - controlled, continue metformin. Order BMP.\n"
    )
    res = engine.suggest(note, setting="outpatient")
    em = [s for s in res.codes if s.system == "CPT" and s.code.startswith("992")]
    assert [(s.code, s.status) for s in em] == [("99214", "suggested")]
    assert em[0].suggestion_id and em[0].explanation[-1] == "decided by: MDM -> 99214"
    only_cm = engine.suggest(note, systems=["ICD-10-CM"])
    assert not [s for s in only_cm.codes if s.system == "CPT"]
    assert not [s for s in engine.suggest("Appendicitis.").codes if s.code.startswith("992")]


_OP_NOTE = (
    "PREOPERATIVE DIAGNOSIS: Acute calculous cholecystitis.\n"
    "PROCEDURE PERFORMED: Laparoscopic cholecystectomy.\n"
    "ANESTHESIA: General.\n"
)


def test_the_pcs_builder_codes_inpatient_notes_through_the_path(engine: Any, pcs_kb: Any) -> None:
    """The registered PCS builder, over a KB with the PCS order file, in this engine's path:
    the note goes through the real NLP and the scoring path to the code set."""
    from clinicode.models.pcs.coder import PcsCoder

    path = engine.scoring
    saved = path._rule_coders
    path._rule_coders = [PcsCoder(pcs_kb)]
    try:
        res = engine.suggest(_OP_NOTE, setting="inpatient")
        built = [s for s in res.codes if s.system == "ICD-10-PCS" and s.code == "0FT44ZZ"]
        assert built, [(s.system, s.code) for s in res.codes]
        assert built[0].status == "suggested" and built[0].suggestion_id
        assert {e.text for e in built[0].evidence} == {"Laparoscopic", "cholecystectomy"}
        assert any(x.startswith("root operation T: Resection") for x in built[0].explanation)
        out = engine.suggest(_OP_NOTE, setting="outpatient")
        assert not [s for s in out.codes if any("axis by axis" in x for x in s.explanation)]
        asked = engine.suggest("PROCEDURE: Appendectomy.\n", setting="inpatient")
        queried = [s for s in asked.codes if s.status == "needs_query" and s.query]
        assert [q.query.axis for q in queried if q.query] == ["approach"]
    finally:
        path._rule_coders = saved
