from __future__ import annotations

from typing import Any

import pytest

NOTE = """CHIEF COMPLAINT: Chest pain.

HISTORY OF PRESENT ILLNESS: 67 yo male with h/o HTN, DM2 with CKD stage 3b and CHF.
He denies fever or cough. Mother had breast cancer.
PAST SURGICAL HISTORY:
1. s/p appendectomy
PHYSICAL EXAM
BMI 41.2. Fracture of the left femur, initial encounter.
ASSESSMENT AND PLAN:
1. Severe COPD exacerbation, possible pneumonia. CXR ordered.
2. Colonoscopy with biopsy next month. Start metformin.
"""


def _by_text(mentions: list[Any]) -> dict[str, Any]:
    return {m.text: m for m in mentions}


def test_components_are_registered_in_order(pipe: Any) -> None:
    assert pipe.nlp.pipe_names == [
        "clinicode_sectionizer",
        "clinicode_sentences",
        "clinicode_abbreviations",
        "clinicode_mentions",
        "clinicode_assertion",
        "clinicode_attributes",
    ]


def test_extract_offsets_sections_assertions_attributes(pipe: Any) -> None:
    mentions = pipe.extract(NOTE)
    for m in mentions:
        assert NOTE[m.start : m.end] == m.text
        assert m.sentence_start <= m.start < m.end <= m.sentence_end
    got = _by_text(mentions)
    assert got["Chest pain"].section == "chief_complaint"
    assert got["Chest pain"].kind == "finding"
    assert got["HTN"].normalized == "hypertension"
    assert got["HTN"].concepts[0] == "ICD-10-CM:I10"
    assert got["CKD stage 3b"].concepts[0].startswith("ICD-10-CM:N18.3")
    assert {(a.name, a.value, a.text) for a in got["CKD stage 3b"].attributes} == {
        ("stage", "3b", "stage 3b")
    }
    assert got["fever"].assertion == "negated"
    assert got["breast cancer"].assertion == "family"
    assert got["appendectomy"].kind == "procedure"
    assert got["appendectomy"].section == "past_surgical_history"
    assert got["pneumonia"].assertion == "uncertain"
    assert got["COPD exacerbation"].normalized.startswith("chronic obstructive pulmonary disease")
    assert ("severity", "severe") in {
        (a.name, a.value) for a in got["COPD exacerbation"].attributes
    }
    femur = got["Fracture of the left femur"]
    assert femur.concepts[0].startswith("ICD-10-CM:S72")
    assert {(a.name, a.value) for a in femur.attributes} >= {
        ("laterality", "left"),
        ("episode", "initial"),
    }
    assert [a.value for a in got["BMI"].attributes if a.name == "bmi"] == ["41.2"]
    assert got["Colonoscopy with biopsy"].kind == "procedure"
    assert got["metformin"].kind == "medication"
    assert got["CXR"].normalized == "chest x-ray"


def test_extract_many_matches_extract(pipe: Any) -> None:
    notes = [NOTE, "No chest pain.", "", "Hypertension."]
    many = pipe.extract_many(notes)
    assert len(many) == 4
    for note, ms in zip(notes, many, strict=True):
        assert [m.model_dump() for m in ms] == [m.model_dump() for m in pipe.extract(note)]
    assert many[2] == []
    assert many[1][0].assertion == "negated"


def test_sections_api(pipe: Any) -> None:
    cats = [s["category"] for s in pipe.sections(NOTE)]
    assert cats == [
        "chief_complaint",
        "hpi",
        "past_surgical_history",
        "physical_exam",
        "assessment_plan",
    ]


@pytest.mark.parametrize(
    "text",
    ["\n\n  \n", "é" * 50, "1.\n2.\n3.", "(((", "ASSESSMENT:", "x" * 3000, "\t\r\nHTN\r\n"],
)
def test_odd_inputs_keep_exact_offsets(pipe: Any, text: str) -> None:
    for m in pipe.extract(text):
        assert text[m.start : m.end] == m.text


def test_load_pipeline_is_cached(pipe: Any, kb: Any) -> None:
    from clinicode.nlp import load_pipeline

    assert load_pipeline(kb, cache=pipe.lexicon_path.parent) is pipe


def test_words_naming_a_condition_only_inside_titles_are_components(pipe: Any) -> None:
    # "acute exacerbation" inside the asthma mention comes only from parts of titles
    # ("bronchiectasis with acute exacerbation"): a component of the longer mention
    got = {
        m.text: m.source for m in pipe.extract("Mild intermittent asthma with acute exacerbation.")
    }
    assert got["Mild intermittent asthma with acute exacerbation"] == "terminology"
    assert got.get("acute exacerbation", "component") == "component"
    # a condition named on its own inside a combination stays a mention of its own
    got = {m.text: m.source for m in pipe.extract("DM2 with CKD stage 3b.")}
    assert [src for text, src in got.items() if text.startswith("CKD")] == ["terminology"]


def test_a_smoker_is_a_condition_and_a_non_smoker_none(pipe: Any) -> None:
    # "Smoker - see Dependence, drug, nicotine": a condition the encoder walks, F17.200
    # unless the product is stated; "non-smoker" names no smoking at all
    smoker = [m for m in pipe.extract("Social history: smoker.") if m.text == "smoker"]
    assert [(m.kind, m.concepts) for m in smoker] == [("condition", ["ICD-10-CM:F17.200"])]
    for text in ("She is a non-smoker.", "Lifelong non smoker."):
        assert not [m for m in pipe.extract(text) if any("F17" in c for c in m.concepts)]


def test_a_contraception_consult_names_its_counseling_code(pipe: Any) -> None:
    got = [m for m in pipe.extract("4. Contraception consult.") if "Z30.09" in str(m.concepts)]
    assert [(m.text, m.kind) for m in got] == [("Contraception consult", "condition")]


def test_an_organ_adjective_meets_its_organ_in_the_titles(pipe: Any) -> None:
    # "Conjunctival scarring" is *Scarring of conjunctiva* (H11.24-): no mention was found
    got = [m for m in pipe.extract("2. Conjunctival scarring, left eye.") if m.kind == "condition"]
    assert [m.text for m in got] == ["Conjunctival scarring"]
    assert any(c.startswith("ICD-10-CM:H11.24") for c in got[0].concepts)
