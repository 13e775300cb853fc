"""The ICD-10-PCS builder (clinicode.models.pcs): axis by axis, every code valid, the evidence
of each axis, queries for what the note does not document, inpatient only."""

from __future__ import annotations

from typing import Any

import pytest

from clinicode.schema import CodeSuggestion, Mention


@pytest.fixture(scope="module")
def coder(pcs_kb: Any) -> Any:
    from clinicode.models.pcs.coder import PcsCoder

    return PcsCoder(pcs_kb)


def _one(coder: Any, text: str, mentions: list[Mention] | None = None) -> CodeSuggestion:
    out = coder.code(text, mentions or [], setting="inpatient")
    assert len(out) == 1, [(s.code, s.explanation) for s in out]
    result: CodeSuggestion = out[0]
    return result


def test_registered_as_the_pcs_rule_coder(pcs_kb: Any) -> None:
    from clinicode.models import registry
    from clinicode.models.pcs.coder import PcsCoder
    from clinicode.models.types import RuleCoder

    cls = registry.get("rule_coder", "pcs")
    assert cls is PcsCoder and cls.systems == ("ICD-10-PCS",)
    assert isinstance(cls(pcs_kb), RuleCoder)


def test_each_axis_with_its_evidence(coder: Any) -> None:
    text = "PREOPERATIVE DIAGNOSIS: Cholelithiasis.\nPROCEDURE: Laparoscopic cholecystectomy.\n"
    s = _one(coder, text)
    assert (s.code, s.status, s.query) == ("0FT44ZZ", "suggested", None)
    assert s.title == "Resection of Gallbladder, Percutaneous Endoscopic Approach"
    assert [e.text for e in s.evidence] == ["Laparoscopic", "cholecystectomy"]
    assert all(text[e.start : e.end] == e.text for e in s.evidence)
    lines = s.explanation
    assert "section 0: Medical and Surgical" in lines
    assert (
        "root operation T: Resection ('cholecystectomy' = cutting out or off, without"
        " replacement, all of a body part)" in lines
    )
    assert "body part 4: Gallbladder ('cholecystectomy')" in lines
    assert "approach 4: Percutaneous Endoscopic ('Laparoscopic')" in lines
    assert "device Z: No Device (none documented)" in lines


def test_undocumented_approach_is_a_query_not_a_guess(coder: Any) -> None:
    s = _one(coder, "PROCEDURE: Appendectomy.")
    assert s.status == "needs_query" and s.query is not None
    assert s.query.axis == "approach"
    assert "approach not documented" in s.query.question.lower()
    assert s.code[:4] == "0DTJ" and s.score < 0.9
    assert any("QUERY" in line for line in s.explanation)


def test_undocumented_laterality_is_a_query(coder: Any) -> None:
    s = _one(coder, "PROCEDURE: Laparoscopic nephrectomy.")
    assert s.status == "needs_query" and s.query is not None
    assert s.query.axis == "body part" and "laterality" in s.query.question
    left = _one(coder, "PROCEDURE: Laparoscopic nephrectomy, left.")
    assert (left.code, left.status) == ("0TT14ZZ", "suggested")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("PROCEDURE: Open right nephrectomy.", "0TT00ZZ"),  # all of it: resection
        ("PROCEDURE: Open right partial nephrectomy.", "0TB00ZZ"),  # a portion: excision
        ("PROCEDURE: Laparoscopic sigmoid colectomy.", "0DTN4ZZ"),
        ("PROCEDURE: Laparoscopic partial sigmoid colectomy.", "0DBN4ZZ"),
    ],
)
def test_ectomy_total_is_resection_partial_is_excision(coder: Any, text: str, code: str) -> None:
    assert _one(coder, text).code == code


def test_biopsy_is_a_diagnostic_excision_via_the_scope(coder: Any) -> None:
    s = _one(coder, "PROCEDURE: Colonoscopy with biopsy of the descending colon.")
    assert s.code == "0DBM8ZX"  # the colonoscopy itself is not coded (B3.11a)
    assert "qualifier X: Diagnostic ('biopsy')" in s.explanation


def test_drainage_diagnostic_or_therapeutic(coder: Any) -> None:
    assert _one(coder, "Procedure: Diagnostic paracentesis.").code == "0W9G3ZX"
    assert _one(coder, "Procedure: Therapeutic paracentesis.").code == "0W9G3ZZ"


def test_converted_to_open_is_open(coder: Any) -> None:
    s = _one(coder, "PROCEDURE: Laparoscopic cholecystectomy converted to open.")
    assert s.code == "0FT40ZZ"


def test_every_built_code_is_in_the_tables(coder: Any, pcs_kb: Any) -> None:
    billable = pcs_kb.billable_map("ICD-10-PCS")
    text = (
        "PROCEDURES:\n1. Exploratory laparotomy with lysis of adhesions.\n"
        "2. Left hemicolectomy.\n3. Placement of a drain in the pelvis.\n"
        "4. Right shoulder arthroscopy with repair.\n5. Cystoscopy with stent placement.\n"
    )
    out = coder.code(text, [], setting="inpatient")
    assert out and all(billable.get(s.code) for s in out)


def test_outpatient_notes_get_no_pcs(coder: Any) -> None:
    assert coder.code("PROCEDURE: Laparoscopic cholecystectomy.", [], setting="outpatient") == []


def test_only_present_procedure_mentions_outside_headings(coder: Any) -> None:
    text = "HPI: s/p appendectomy. Plan: laparoscopic cholecystectomy tomorrow."

    def mention(phrase: str, assertion: str) -> Mention:
        start = text.index(phrase)
        return Mention(
            start=start,
            end=start + len(phrase),
            text=phrase,
            normalized=phrase.lower(),
            kind="procedure",
            sentence_start=text.rfind(".", 0, start) + 1,
            sentence_end=text.index(".", start) + 1,
            assertion=assertion,  # type: ignore[arg-type]
        )

    past, planned = (
        mention("appendectomy", "historical"),
        mention("cholecystectomy", "hypothetical"),
    )
    assert coder.code(text, [past, planned], setting="inpatient") == []
    done = mention("cholecystectomy", "present")
    assert [s.code for s in coder.code(text, [done], setting="inpatient")] == ["0FT44ZZ"]


def test_no_pcs_without_the_pcs_code_set(kb: Any) -> None:
    from clinicode.models.pcs.coder import PcsCoder

    coder = PcsCoder(kb)  # the session KB holds ICD-10-CM only
    assert coder.code("PROCEDURE: Laparoscopic cholecystectomy.", [], setting="inpatient") == []


def test_knowledge_lives_in_the_data_file() -> None:
    from clinicode.models.pcs.knowledge import load_knowledge

    k = load_knowledge()
    assert k.root_operations["resection"]["value"] == "T"
    assert k.root_operations["excision"]["value"] == "B"
    assert k.approach_labels["4"] == "Percutaneous Endoscopic"
    assert k.body_part("Gallbladder") is not None


def test_procedures_in_the_surgical_history_are_not_coded(coder: Any) -> None:
    text = "PAST SURGICAL HISTORY: Laparoscopic cholecystectomy."
    start = text.index("Laparoscopic")
    m = Mention(
        start=start,
        end=len(text) - 1,
        text=text[start:-1],
        normalized="laparoscopic cholecystectomy",
        kind="procedure",
        section="past_surgical_history",
        sentence_start=0,
        sentence_end=len(text),
    )
    assert coder.code(text, [m], setting="inpatient") == []
    done = m.model_copy(update={"section": "hospital_course"})
    assert [s.code for s in coder.code(text, [done], setting="inpatient")] == ["0FT44ZZ"]


def test_discharge_summary_procedure_list(coder: Any) -> None:
    text = (
        "DISCHARGE SUMMARY\nADMISSION DIAGNOSIS: Sigmoid diverticulitis with abscess.\n"
        "PROCEDURES PERFORMED DURING THIS ADMISSION:\n"
        "1. CT-guided percutaneous drainage of pelvic abscess with drain placement on 3/2.\n"
        "2. Laparoscopic sigmoid colectomy on 3/9.\n"
        "PROCEDURE IN DETAIL: The patient was placed supine. The appendix was removed.\n"
        "PLANNED PROCEDURE: Colonoscopy in 6 weeks.\n"
    )
    codes = [s.code for s in coder.code(text, [], setting="inpatient")]
    assert codes == ["0W9J30Z", "0DTN4ZZ"]
