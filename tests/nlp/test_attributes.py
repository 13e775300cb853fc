from __future__ import annotations

import spacy
from spacy.tokens import Span

from clinicode.nlp.attributes import AttributeTagger, find_attributes
from clinicode.nlp.sentences import ClinicalSentencizer


def _found(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in find_attributes(text):
        assert f.end > f.start
        out.setdefault(f.name, []).append(f.value)
    return out


def test_values_are_normalized() -> None:
    got = _found(
        "Acute on chronic systolic CHF, NYHA class III. CKD stage 3b. Mild persistent asthma. "
        "Bilateral knee pain. Fracture of the left femur, subsequent encounter. "
        "G2P1 at 32 weeks gestation. BMI 41.2."
    )
    assert got["acuity"][0] == "acute on chronic"
    assert got["nyha_class"] == ["3"]
    assert got["stage"] == ["3b"]
    assert got["severity"] == ["mild"]
    assert got["laterality"] == ["bilateral", "left"]
    assert got["episode"] == ["subsequent"]
    assert got["pregnancy_weeks"] == ["32"]
    assert got["bmi"] == ["41.2"]


def test_side_abbreviations_are_laterality() -> None:
    got = _found("Ulcer of the posterior R calf. L great toe ulcer. Crepitus b/l. Knee pain, lt.")
    assert got["laterality"] == ["right", "left", "bilateral", "left"]
    # a capital letter before no word, and lower-case letters, are no side
    assert "laterality" not in _found("R/O pneumonia. Given 2 l of fluid. Vitamin D level.")


def test_value_tables_of_the_data_normalize_spellings() -> None:
    # aliases and episode prefixes of nlp/resources/attributes.json
    got = _found(
        "Sub-acute cough. Moderate-severe asthma. Moderately severe COPD. Severely ill. "
        "Malunion of the radius. Sequelae of stroke. Follow-up visit. Right arm pain at 20 weeks."
    )
    assert got["acuity"] == ["subacute"]
    assert got["severity"] == ["moderately severe", "moderately severe", "severe"]
    assert got["episode"] == ["subsequent", "sequela", "subsequent"]
    assert got["laterality"] == ["right"]
    assert "pregnancy_weeks" not in got  # no word of pregnancy within 30 characters


def test_a_range_of_vertebral_levels_names_its_region() -> None:
    got = _found("Stenosis C3-C4 and C5-6. HNP L5-S1. Fx T12-L1. Laminectomy C3 through C6.")
    assert got["spine_region"] == [
        "cervical spine",
        "cervical spine",
        "lumbosacral spine",
        "thoracolumbar spine",
        "cervical spine",
    ]
    # one level alone is an MRI sequence or a heart sound, and lower case is no level
    assert "spine_region" not in _found("T2 hyperintensity. S1, S2 normal. c3-c4 written small.")


def test_roman_stage_and_offsets_point_at_the_text() -> None:
    text = "Lung cancer stage IV."
    (f,) = [f for f in find_attributes(text) if f.name == "stage"]
    assert f.value == "4"
    assert text[f.start : f.end] == "stage IV"


def test_attributes_attach_to_the_nearest_mention_only() -> None:
    nlp = spacy.blank("en")
    text = "HTN, DM2 with CKD stage 3b and left knee pain."
    doc = ClinicalSentencizer()(nlp.make_doc(text))
    spans = [
        doc.char_span(a, b, label="condition") for a, b in ((0, 3), (5, 8), (14, 26), (36, 45))
    ]
    doc.spans["mentions"] = [s for s in spans if s is not None]
    doc = AttributeTagger()(doc)
    by_text = {m.text: {a[0]: a[1] for a in m._.attributes} for m in doc.spans["mentions"]}
    assert by_text["CKD stage 3b"] == {"stage": "3b"}
    assert by_text["HTN"] == {} and by_text["DM2"] == {}
    assert by_text["knee pain"] == {"laterality": "left"}
    assert all(isinstance(s, Span) for s in doc.spans["attributes"])
