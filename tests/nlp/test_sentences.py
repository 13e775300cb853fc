from __future__ import annotations

import spacy

from clinicode.nlp.sentences import ClinicalSentencizer


def _sents(text: str) -> list[str]:
    nlp = spacy.blank("en")
    doc = ClinicalSentencizer()(nlp.make_doc(text))
    return [s.text.strip() for s in doc.sents]


def test_numbered_problem_list_one_item_per_sentence() -> None:
    got = _sents("PROBLEMS:\n1. Hypertension.\n2. DM2 with CKD stage 3\n3. CHF\n")
    assert got == ["PROBLEMS:", "1. Hypertension.", "2. DM2 with CKD stage 3", "3. CHF"]


def test_line_broken_list_without_periods_and_wrapped_lines() -> None:
    got = _sents(
        "The patient has\nchest pain and dyspnea. No fever.\n\nAssessment\n- pneumonia\n- sepsis"
    )
    assert got == [
        "The patient has\nchest pain and dyspnea.",
        "No fever.",
        "Assessment",
        "- pneumonia",
        "- sepsis",
    ]


def test_titles_and_inline_numbering() -> None:
    assert _sents("Seen by Dr. Smith today. Hypertension. 2. Diabetes.") == [
        "Seen by Dr. Smith today.",
        "Hypertension.",
        "2. Diabetes.",
    ]


def test_lower_case_after_period_does_not_split() -> None:
    assert len(_sents("Temp 38.5 C. and rising")) == 1
