"""Documented diagnoses reach `codes` (models/guidelines/documented.py), the more specific of
two statements wins, and the assertion fixes of the layer (screening, history concepts, a
negated "without" part). Ranker scores are set by hand; the layer's threshold is 0.5."""

from __future__ import annotations

from typing import Any

import pytest

from clinicode.models.encoder.words import keys
from clinicode.models.guidelines import Guidelines
from clinicode.models.guidelines.titles import title_absent, title_needs
from clinicode.nlp.cues import sentence_bounds
from tests.models.guidelines_helpers import build, by_code, codes_of


def run(
    g: Guidelines,
    text: str,
    spec: list[tuple[Any, ...]],
    setting: str = "outpatient",
    explain: dict[str, list[str]] | None = None,
    no_evidence: tuple[str, ...] = (),
) -> Any:
    """The layer's result with each mention in its sentence, as the NLP gives it; ``explain``:
    a code's explanation lines (an encoder's Index path); ``no_evidence``: codes a classifier
    scored without pointing at the note's words."""
    ranked, mentions = build(text, spec)
    for s in ranked:
        s.explanation = list((explain or {}).get(s.code, s.explanation))
        if s.code in no_evidence:
            s.evidence = []
    for m in mentions:
        m.sentence_start, m.sentence_end = sentence_bounds(text, m.start, m.end)
    return g.apply(ranked, mentions, text=text, setting=setting, threshold=0.5)


# every code these tests expect in `codes` (checked billable in FY2026 below)
EXPECTED = [
    "M34.9",
    "K35.80",
    "L03.116",
    "I11.9",
    "Z12.2",
    "Z87.891",
    "I10",
    "E11.9",
    "R10.33",
    "I50.33",
    "I21.4",
    "M10.9",
    "I11.0",
    "M19.91",
    "J69.0",
    "R50.9",
    "E34.9",
    "I69.391",
    "I21.02",
    "K80.12",
    "F32.A",
    "N18.31",
    "E11.22",
    "K81.0",
    "R51.9",
    "Z17.32",
    "Z17.0",
    "Z15.01",
    "Z90.12",
    "F17.200",
    "G43.009",
]


@pytest.mark.parametrize("code", EXPECTED)
def test_expected_codes_are_billable(g: Guidelines, code: str) -> None:
    assert g.is_billable(code), code


def test_one_stated_side_implies_unilateral() -> None:
    # "right knee" is a unilateral knee; the unspecified knee still needs "unilateral"
    assert "unilater" not in title_needs("Unilateral primary osteoarthritis, right knee")[0]
    assert "unilater" in title_needs("Unilateral primary osteoarthritis, unspecified knee")[0]


def test_title_needs() -> None:
    assert title_needs("Systemic sclerosis, unspecified") == (("system", "sclero"), ())
    # "unspecified whether ..." leaves what follows open: nothing of it is needed
    title = "Chronic respiratory failure, unspecified whether with hypoxia or hypercapnia"
    assert title_needs(title)[0] == tuple(keys("chronic respiratory failure"))
    # a leading "Unspecified" is only a word; the rest is needed
    assert title_needs("Unspecified acute appendicitis")[0] == ("acut", "appendicit")
    # words after "without" need no documentation; an acronym in parentheses stands for all
    need, alt = title_needs("Non-ST elevation (NSTEMI) myocardial infarction")
    assert alt == tuple(keys("NSTEMI")) and not set(alt) & set(need)
    assert title_needs("Hypertensive heart disease without heart failure")[0] == tuple(
        keys("hypertensive heart")
    )


def test_a_title_saying_absent_what_the_note_states_is_not_documented(g: Guidelines) -> None:
    # "migraine" states every needed word of G43.009, whose title says "without aura"
    for text, code, words in [
        ("Dx: migraine with aura.", "G43.009", "migraine"),
        ("Dx: spondylosis with myelopathy.", "M47.819", "spondylosis"),
    ]:
        res = run(g, text, [(code, words, "present", 0.2)])
        assert codes_of(res) == [], text
    res = run(g, "Dx: migraine without aura.", [("G43.009", "migraine", "present", 0.2)])
    assert codes_of(res) == ["G43.009"]
    # a word the title also needs is not what it says is absent
    got = title_absent("Right tubal pregnancy without intrauterine pregnancy")
    assert got == set(keys("intrauterine"))


def test_a_title_stated_word_for_word_is_coded_under_the_threshold(g: Guidelines) -> None:
    text = "Dx: gastroparesis secondary to systemic sclerosis."
    res = run(
        g,
        text,
        [
            ("M34.9", "systemic sclerosis", "present", 0.2),
            ("M34.81", "systemic sclerosis", "present", 0.2),  # "with lung involvement"
        ],
    )
    assert codes_of(res) == ["M34.9"]
    assert any(e.startswith("I.A.19") for e in by_code(res)["M34.9"].explanation)


def test_negated_family_and_outpatient_uncertain_mentions_bring_nothing(g: Guidelines) -> None:
    for text, assertion in [
        ("No systemic sclerosis.", "negated"),
        ("Mother with systemic sclerosis.", "family"),
        ("Suspected systemic sclerosis.", "uncertain"),
    ]:
        res = run(g, text, [("M34.9", "systemic sclerosis", assertion, 0.2)])
        assert "M34.9" not in codes_of(res), text
    # at inpatient discharge an uncertain diagnosis is coded as established (II.H)
    res = run(
        g,
        "Final diagnosis: suspected systemic sclerosis.",
        [("M34.9", "systemic sclerosis", "uncertain", 0.2)],
        setting="inpatient",
    )
    assert codes_of(res) == ["M34.9"]


def test_the_more_specific_documented_code_replaces_a_less_specific_one(g: Guidelines) -> None:
    text = "Final diagnosis: acute appendicitis, managed with antibiotics."
    res = run(
        g,
        text,
        [("K37", "appendicitis", "present", 0.9), ("K35.80", "appendicitis", "present", 0.1)],
    )
    assert codes_of(res) == ["K35.80"]
    assert by_code(res)["K37"].status != "suggested"


def test_a_kept_code_that_says_as_much_keeps_a_vaguer_one_out(g: Guidelines) -> None:
    text = "HPI: periumbilical pain since this morning."
    res = run(
        g,
        text,
        [
            ("R10.33", "periumbilical pain", "present", 0.9),
            ("R52", "periumbilical pain", "present", 0.1),
        ],
    )
    assert codes_of(res) == ["R10.33"]


def test_the_most_specific_documented_candidate_wins(g: Guidelines) -> None:
    text = "Dx: acute on chronic diastolic heart failure."
    res = run(
        g,
        text,
        [
            ("I50.9", "heart failure", "present", 0.3),
            ("I50.33", "heart failure", "present", 0.05),
        ],
    )
    assert codes_of(res) == ["I50.33"]


def test_an_undocumented_code_of_the_category_gives_way(g: Guidelines) -> None:
    text = "Type 2 diabetes, diet controlled."
    res = run(
        g,
        text,
        [
            ("E11.8", "Type 2 diabetes", "present", 0.8),  # "with unspecified complications"
            ("E11.9", "Type 2 diabetes", "present", 0.05),
        ],
    )
    assert codes_of(res) == ["E11.9"]


def test_unspecified_moves_to_the_code_of_its_category_the_note_states(g: Guidelines) -> None:
    text = "Admitted for cellulitis of the left lower leg."
    res = run(g, text, [("L03.90", "cellulitis", "present", 0.9)])
    assert codes_of(res) == ["L03.116"]
    # nothing more stated: the unspecified code stays
    res = run(g, "Cellulitis, cephalexin.", [("L03.90", "Cellulitis", "present", 0.9)])
    assert codes_of(res) == ["L03.90"]


def test_same_words_alternatives_prefer_the_stated_specific_code(g: Guidelines) -> None:
    text = "Cellulitis of right lower leg. Cephalexin."
    res = run(
        g,
        text,
        [("L03.90", "Cellulitis", "present", 0.9), ("L03.115", "Cellulitis", "present", 0.8)],
    )
    assert codes_of(res) == ["L03.115"]


def test_a_negated_without_part_supports_the_code(g: Guidelines) -> None:
    text = "HTN with LVH on echo. No heart failure."
    res = run(
        g,
        text,
        [("I11.9", "HTN", "present", 0.9), ("I11.9", "heart failure", "negated", 0.9)],
    )
    assert "I11.9" in codes_of(res)
    # a negated mention naming the code's own axis still suppresses it
    res = run(
        g,
        "HTN. No heart failure.",
        [("I11.0", "HTN", "present", 0.9), ("I11.0", "heart failure", "negated", 0.9)],
    )
    assert "I11.0" not in codes_of(res)


def test_a_condition_named_by_a_screening_is_not_coded(g: Guidelines) -> None:
    text = "Lung cancer screening visit. Low-dose CT negative."
    res = run(g, text, [("C34.90", "Lung cancer", "present", 0.8)])
    assert codes_of(res) == ["Z12.2"]
    res = run(g, "Dx: lung cancer, right upper lobe.", [("C34.90", "lung cancer", "present", 0.8)])
    assert "Z12.2" not in codes_of(res)


def test_history_codes_skip_concepts_the_patient_cannot_have(g: Guidelines) -> None:
    text = "62F, quit smoking 5 yrs ago."
    res = run(
        g,
        text,
        [("O99.330", "smoking", "historical", 0.01), ("F17.210", "smoking", "historical", 0.01)],
    )
    assert "Z87.891" in codes_of(res)
    assert "Z87.59" not in codes_of(res)


def test_no_history_code_for_a_condition_the_note_states_current(g: Guidelines) -> None:
    # Z87.891 excludes current nicotine dependence (F17.2-): "smokes" states it current
    text = "She smokes 1 pack a week; prior to that she had been smoking 1/2 ppd."
    res = run(
        g,
        text,
        [("F17.210", "smokes", "present", 0.01), ("F17.210", "smoking", "historical", 0.01)],
    )
    assert "Z87.891" not in codes_of(res)
    res = run(g, "She quit smoking in 2010.", [("F17.210", "smoking", "historical", 0.01)])
    assert "Z87.891" in codes_of(res)


def test_whose_history_a_history_code_is(g: Guidelines) -> None:
    # the patient's own past names no family history code the phrase also matched
    spec = [
        ("Z80.3", "breast cancer", "historical", 0.01),
        ("Z85.3", "breast cancer", "historical", 0.01),
    ]
    res = run(g, "History of breast cancer.", spec)
    assert "Z85.3" in codes_of(res) and "Z80.3" not in codes_of(res)
    # a present mention whose words are a history code's title and say whose it is
    res = run(
        g,
        "Family history of breast cancer.",
        [("Z80.3", "Family history of breast cancer", "present", 0.01)],
    )
    assert codes_of(res) == ["Z80.3"]
    # ... but not where a relative is named just before it
    text = "Family history of colon cancer."
    res = run(g, text, [("Z85.038", "history of colon cancer", "present", 0.01)])
    assert "Z85.038" not in codes_of(res)


def test_no_history_code_beside_the_current_code_of_the_same_words(g: Guidelines) -> None:
    # "diagnosed in 2019" makes the mention past, the treatment keeps C50.911 current
    text = "Right breast cancer diagnosed in 2019, currently on tamoxifen."
    res = run(g, text, [("C50.911", "Right breast cancer", "historical", 0.9)])
    assert "C50.911" in codes_of(res) and "Z85.3" not in codes_of(res)


def test_chronic_condition_listed_as_history_is_coded_as_current(g: Guidelines) -> None:
    res = run(g, "PMH: hypertension.", [("I10", "hypertension", "historical", 0.1)])
    assert codes_of(res) == ["I10"]


def test_what_follows_an_absent_part_of_a_title_must_be_stated(g: Guidelines) -> None:
    # "without ..." needs nothing, but the site, state or feature after it does
    need = title_needs("Type 2 diabetes mellitus without complications in remission")[0]
    assert keys("remission")[0] in need
    assert "lip" in title_needs("Puncture wound without foreign body of lip, initial encounter")[0]
    need = title_needs("Calculus of gallbladder without cholecystitis with obstruction")[0]
    assert "obstruct" in need and "cholecystit" not in need
    assert "conscious" not in title_needs("Concussion without loss of consciousness")[0]
    assert title_needs("Migraine without aura, not intractable, without status migrainosus")[0] == (
        "migrain",
    )
    res = run(
        g,
        "Type 2 diabetes, diet controlled.",
        [
            ("E11.A", "Type 2 diabetes", "present", 0.05),  # "... in remission"
            ("E11.9", "Type 2 diabetes", "present", 0.01),
        ],
    )
    assert codes_of(res) == ["E11.9"]


def test_an_acronym_stands_only_for_the_words_it_abbreviates(g: Guidelines) -> None:
    # "STEMI" is "ST elevation myocardial infarction": "subsequent" and the wall still count
    title = "Subsequent ST elevation (STEMI) myocardial infarction of inferior wall"
    assert set(title_needs(title)[1]) == {*keys("STEMI subsequent inferior wall")}
    res = run(
        g,
        "Dx: Acute inferior wall STEMI, RCA occlusion.",
        [("I22.1", "inferior wall STEMI", "present", 0.05)],
    )
    assert "I22.1" not in codes_of(res)
    res = run(g, "Dx: NSTEMI, troponin peak 4.2.", [("I21.4", "NSTEMI", "present", 0.05)])
    assert codes_of(res) == ["I21.4"]


def test_a_mention_borrows_words_from_its_own_list_item_only(g: Guidelines) -> None:
    # "chronic" belongs to "chronic pain": it does not make the gout chronic
    spec = [
        ("G89.29", "chronic pain", "present", 0.01),
        ("M1A.9XX0", "gout", "present", 0.05),  # "Chronic gout, unspecified, without tophus"
        ("M10.9", "gout", "present", 0.01),
    ]
    assert codes_of(run(g, "Problems: chronic pain, gout, HTN.", spec)) == ["M10.9"]
    assert codes_of(run(g, "Problems: chronic pain; gout.", spec)) == ["M10.9"]
    # a linking word joins the next condition (I.A.15), and words after the last one stay
    spec = [("I11.0", "Hypertension", "present", 0.05), ("I50.9", "heart failure", "present", 0.01)]
    res = run(g, "Hypertension, with heart failure, stable.", spec)
    assert "I11.0" in codes_of(res)
    assert any(e.startswith("I.A.19") for e in by_code(res)["I11.0"].explanation)
    res = run(g, "Hypertension, heart failure.", spec)
    assert not any(e.startswith("I.A.19") for e in by_code(res)["I11.0"].explanation)
    # a label before the first condition is not one of its words
    res = run(
        g,
        "SECONDARY: hypertension.",
        [("I15.9", "hypertension", "present", 0.3), ("I10", "hypertension", "present", 0.01)],
    )
    assert codes_of(res) == ["I10"]


def test_a_documented_code_whose_words_another_says_with_more_gives_way(g: Guidelines) -> None:
    # two categories on the same words: the code that says more of them is coded (I.B.2)
    text = "Dx: acute appendicitis. Lap appendectomy performed."
    spec = [
        ("K37", "acute appendicitis", "present", 0.05),  # "Unspecified appendicitis"
        ("K35.80", "acute appendicitis", "present", 0.01),
    ]
    assert codes_of(run(g, text, spec)) == ["K35.80"]


def test_a_stated_side_answers_an_unspecified_site_or_side(g: Guidelines) -> None:
    def coded(text: str, phrase: str, code: str, side: str | None) -> list[str]:
        attrs = {phrase: [("laterality", side, side)]} if side else None
        ranked, mentions = build(text, [(code, phrase, "present", 0.01)], attrs=attrs)
        for m in mentions:
            m.sentence_start, m.sentence_end = sentence_bounds(text, m.start, m.end)
        res = g.apply(ranked, mentions, text=text, setting="inpatient", threshold=0.5)
        return codes_of(res)

    # "Primary osteoarthritis, unspecified site"; "Pain in unspecified knee" (M25.561 is right)
    text = "Admitted for primary osteoarthritis of right knee."
    assert coded(text, "primary osteoarthritis of right knee", "M19.91", "right") == []
    assert coded("Knee pain, left.", "Knee pain", "M25.569", "left") == []
    # no side stated: the unspecified code is what the note documents
    text = "Primary osteoarthritis, on meloxicam."
    assert coded(text, "Primary osteoarthritis", "M19.91", None) == ["M19.91"]


def test_a_sign_is_not_coded_by_its_words_beside_a_definitive_diagnosis(g: Guidelines) -> None:
    text = "Admitted with fever. Dx: aspiration pneumonia."
    spec = [
        ("R50.9", "fever", "present", 0.05),  # "Fever, unspecified"
        ("J69.0", "aspiration pneumonia", "present", 0.9),
    ]
    assert codes_of(run(g, text, spec, setting="inpatient")) == ["J69.0"]
    # no diagnosis established (IV.H): the documented sign is coded
    text = "Fever since yesterday. Suspected pneumonia, CXR pending."
    spec = [("R50.9", "Fever", "present", 0.05), ("J18.9", "pneumonia", "uncertain", 0.6)]
    assert codes_of(run(g, text, spec)) == ["R50.9"]


def test_a_lone_modifier_does_not_document_a_disorder(g: Guidelines) -> None:
    # "Endocrine disorder, unspecified": with "disorder" optional only "endocrine" was left
    res = run(g, "On adjuvant endocrine therapy.", [("E34.9", "endocrine", "present", 0.01)])
    assert codes_of(res) == []
    text = "Endocrine disorder, workup pending."
    res = run(g, text, [("E34.9", "Endocrine disorder", "present", 0.01)])
    assert codes_of(res) == ["E34.9"]


def test_a_residual_of_a_stroke_documents_the_sequela_index_path(g: Guidelines) -> None:
    # I.B.10: a sequela is the residual effect; the encoder's Index path names "Sequelae".
    # Without the residual there is no sequela to document.
    for link, coded in (("as a residual of", True), ("and", False)):
        text = f"81M with oropharyngeal dysphagia {link} a L MCA ischemic stroke 2 yrs ago."
        ranked, mentions = build(text, [("I69.391", "oropharyngeal dysphagia", "present", 0.1)])
        ranked[0].explanation.append("Index: Sequelae, stroke NOS, dysphagia -> I69.391")
        for m in mentions:
            m.sentence_start, m.sentence_end = sentence_bounds(text, m.start, m.end)
        res = g.apply(ranked, mentions, text=text, setting="inpatient", threshold=0.5)
        assert ("I69.391" in codes_of(res)) is coded, link


def test_a_coronary_artery_by_its_abbreviation(g: Guidelines) -> None:
    text = "Anterior wall ST elevation myocardial infarction involving the LAD."
    spec = [("I21.02", "ST elevation myocardial infarction", "present", 0.1)]
    assert "I21.02" in codes_of(run(g, text, spec, setting="inpatient"))
    text = "Anterior wall ST elevation myocardial infarction, cath pending."
    assert "I21.02" not in codes_of(run(g, text, spec, setting="inpatient"))


def test_the_tabular_title_beats_a_code_the_index_alone_reached(g: Guidelines) -> None:
    # the FY2017 Index's "Depression" F32.9 is *Major depressive disorder, single episode,
    # unspecified* in FY2026: the coder verifying it in the Tabular codes F32.A, whose title
    # says what the note says, however a retrained ranker scores F32.9
    text = "Dx: depression."
    res = run(
        g,
        text,
        [("F32.9", "depression", "present", 0.95), ("F32.A", "depression", "present", 0.05)],
        explain={"F32.9": ["Index: Depression -> F32.9"]},
    )
    assert codes_of(res) == ["F32.A"]
    # an Index path that states more of the note still wins over a shorter title
    text = "Dx: type 2 diabetes with chronic kidney disease."
    phrase = "type 2 diabetes with chronic kidney disease"
    res = run(
        g,
        text,
        [("E11.22", phrase, "present", 0.9), ("E11.9", phrase, "present", 0.05)],
        explain={"E11.22": ["Index: Diabetes, type 2, with, chronic kidney disease -> E11.22"]},
    )
    assert "E11.22" in codes_of(res) and "E11.9" not in codes_of(res)


def test_the_ckd_stage_the_note_writes_beats_a_ranker_prior(g: Guidelines) -> None:
    text = "Assessment: T2DM with diabetic CKD stage 3a."
    res = run(
        g,
        text,
        [
            ("E11.22", "T2DM with diabetic CKD", "present", 0.9),
            ("N18.4", "CKD stage 3a", "present", 0.3),  # a note classifier's stage 4
        ],
        no_evidence=("N18.4",),
    )
    assert "N18.31" in codes_of(res) and "N18.4" not in codes_of(res)


def test_fever_is_part_of_acute_cholecystitis(g: Guidelines) -> None:
    text = "Dx: acute cholecystitis. Fever to 38.6 on arrival."
    res = run(
        g,
        text,
        [("K81.0", "acute cholecystitis", "present", 0.9), ("R50.9", "Fever", "present", 0.8)],
    )
    assert codes_of(res) == ["K81.0"]


def test_a_negated_diagnosis_does_not_keep_a_documented_symptom_out(g: Guidelines) -> None:
    # a retrained ranker keeps G03.9 for "meningitis" in "r/o meningitis unlikely"; the
    # assertion rule suppresses it, and the headache the note documents is still coded
    text = "Pt reports headache for 1 day. Meningitis unlikely given normal exam."
    res = run(
        g,
        text,
        [("G03.9", "Meningitis", "negated", 0.9), ("R51.9", "headache", "present", 0.1)],
    )
    assert codes_of(res) == ["R51.9"]


def test_a_receptor_status_is_read_in_its_own_clause(g: Guidelines) -> None:
    # the sentence states "positive" and "negative"; the clause of "HER2" states one of them
    text = "IDC of L breast. ER positive, PR positive, HER2 negative."
    spec = [("Z17.31", "HER2", "present", 0.7), ("Z17.32", "HER2", "present", 0.7)]
    assert codes_of(run(g, text, spec)) == ["Z17.32"]
    text = "IDC of L breast. HER2 negative, ER positive, PR positive."
    assert codes_of(run(g, text, spec)) == ["Z17.32"]  # not the order of the ranker's list


def test_a_title_alias_and_a_curated_phrase_document_their_code(g: Guidelines) -> None:
    # *Estrogen receptor positive status [ER+]*: "ER positive"; "BRCA2 pathogenic variant"
    # is the curated synonym of *Genetic susceptibility to malignant neoplasm of breast*
    text = "Breast cancer, ER positive. Germline: BRCA2 pathogenic variant."
    spec = [
        ("Z17.0", "ER positive", "present", 0.05),
        ("Z15.01", "BRCA2 pathogenic variant", "present", 0.05),
    ]
    assert sorted(codes_of(run(g, text, spec))) == ["Z15.01", "Z17.0"]
    text = "Breast cancer, ER status pending. Germline testing for BRCA2 ordered."
    spec = [("Z17.0", "ER", "present", 0.05), ("Z15.01", "BRCA2", "present", 0.05)]
    assert codes_of(run(g, text, spec)) == []


def test_a_past_procedure_keeps_its_status_code(g: Guidelines) -> None:
    # "s/p L mastectomy" is a historical mention; its status code is what it documents
    text = "Breast cancer. S/p L mastectomy 3 months ago."
    res = run(g, text, [("Z90.12", "mastectomy", "historical", 0.9)])
    assert codes_of(res) == ["Z90.12"]


def test_a_habit_the_social_history_states_is_current(g: Guidelines) -> None:
    # the NLP reads the header's "history" as a past-tense cue; the habit is the patient's now
    text = "Social history: current smoker, 1/2 ppd. Former drinker, quit 2010."
    ranked, mentions = build(
        text,
        [
            ("F17.200", "current smoker", "historical", 0.9, "social_history"),
            ("F10.20", "drinker", "historical", 0.9, "social_history"),
        ],
    )
    for m in mentions:
        m.sentence_start, m.sentence_end = sentence_bounds(text, m.start, m.end)
        m.assertion_cue = "history" if m.text == "current smoker" else "quit"
    res = g.apply(ranked, mentions, text=text, setting="outpatient", threshold=0.5)
    assert "F17.200" in codes_of(res)
    assert "F10.20" not in codes_of(res)  # its own cue says it is over
