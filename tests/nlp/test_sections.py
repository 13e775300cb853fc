from __future__ import annotations

import spacy

from clinicode.nlp.sections import Sectionizer, doc_sections


def _sections(text: str) -> list[tuple[str | None, str]]:
    nlp = spacy.blank("en")
    doc = Sectionizer(nlp)(nlp.make_doc(text))
    return [(s["category"], s["header"]) for s in doc_sections(doc)]


def test_headers_upper_title_colon_numbered_and_bare() -> None:
    note = (
        "CHIEF COMPLAINT: cough.\n"
        "History of Present Illness: 3 days of cough.\n"
        "PMH:\n1. HTN\n"
        "2. Family History: mother with diabetes.\n"
        "Assessment and Plan\n"
        "Pneumonia. Start antibiotics.\n"
        "DISCHARGE DIAGNOSES:\n1. Pneumonia\n"
    )
    got = _sections(note)
    assert [c for c, _ in got] == [
        "chief_complaint",
        "hpi",
        "past_medical_history",
        "family_history",
        "assessment_plan",
        "diagnoses",
    ]
    assert got[3][1] == "Family History:"


def test_header_words_inside_a_sentence_are_not_headers() -> None:
    note = "The plan is to review the assessment: tomorrow.\nWe discussed the plan\n"
    assert [c for c, _ in _sections(note)] == [None]


def test_section_offsets_cover_the_note_in_order() -> None:
    note = "HPI: fever.\nPLAN: rest.\n"
    nlp = spacy.blank("en")
    doc = Sectionizer(nlp)(nlp.make_doc(note))
    secs = doc_sections(doc)
    assert [s["category"] for s in secs] == ["hpi", "plan"]
    assert note[secs[0]["start"] : secs[0]["end"]].startswith("HPI:")
    assert secs[1]["end"] == len(note)


def test_any_capitalized_history_header_is_a_header_and_listed_ones_keep_their_category() -> None:
    note = (
        "HPI: 40 yo F with depression.\n"
        "SUBSTANCE ABUSE HISTORY: caffeine only.\n"
        "ABUSE HISTORY/TRAUMA/UNUSUAL CHILDHOOD EVENTS: none.\n"
        "FAMILY PSYCHIATRIC HISTORY: son with ADHD.\n"
        "LEGAL HX: none.\n"
        "Her history: she has had asthma.\n"
    )
    got = _sections(note)
    assert [c for c, _ in got] == [
        "hpi",
        "social_history",
        "other_history",
        "family_history",
        "other_history",
    ]
    assert got[2][1] == "ABUSE HISTORY/TRAUMA/UNUSUAL CHILDHOOD EVENTS"
