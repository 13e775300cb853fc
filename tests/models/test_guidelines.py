"""Unit tests of the guidelines layer with hand-built ranker output (no NLP, no ranker):
assertion policy, combination codes, instructional notes, integral symptoms, specificity."""

from __future__ import annotations

import pytest

from clinicode.models.guidelines import Guidelines, bmi_code, code_matches, note_refs
from clinicode.models.types import GuidelinesLayer
from tests.models.guidelines_helpers import build, by_code, codes_of, run


# -- helpers and data ---------------------------------------------------------------------------
def test_code_patterns() -> None:
    assert code_matches("N18.1-N18.4", "N18.30")
    assert not code_matches("N18.1-N18.4", "N18.5")
    assert code_matches("B95-B97", "B96.20")
    assert code_matches("E08.-", "E08.22")
    assert code_matches("O00-O9A", "O24.410")
    assert not code_matches("E11", "E10.9")
    assert note_refs("code to identify stage of chronic kidney disease (N18.1-N18.6)") == [
        "N18.1-N18.6"
    ]
    assert note_refs("diabetes mellitus due to underlying condition (E08.-)") == ["E08"]


def test_bmi_code() -> None:
    assert bmi_code(42.3) == "Z68.41"
    assert bmi_code(31.9) == "Z68.31"
    assert bmi_code(18.0) == "Z68.1"
    assert bmi_code(72) == "Z68.45"


def test_is_a_guidelines_layer(g: Guidelines) -> None:
    assert isinstance(g, GuidelinesLayer)


# -- assertion policy (I.A.19, II.H, III.C, IV.H, I.C.21.c.4) -------------------------------------
def test_outpatient_uncertain_codes_symptoms(g: Guidelines) -> None:
    text = "A: probable pneumonia. Productive cough and fever x3 days."
    res = run(
        g,
        text,
        [
            ("J18.9", "pneumonia", "uncertain", 0.9),
            ("R05.9", "Productive cough", "present", 0.4),
            ("R50.9", "fever", "present", 0.3),
        ],
    )
    assert set(codes_of(res)) == {"R05.9", "R50.9"}
    j18 = by_code(res)["J18.9"]
    assert j18.status == "suppressed" and j18 in res.suppressed
    assert any(e.startswith("IV.H") for e in j18.explanation)


def test_inpatient_uncertain_coded_as_established(g: Guidelines) -> None:
    text = "Discharge dx: probable pneumonia. Cough and fever."
    res = run(
        g,
        text,
        [
            ("J18.9", "pneumonia", "uncertain", 0.9),
            ("R05.9", "Cough", "present", 0.7),
            ("R50.9", "fever", "present", 0.6),
        ],
        setting="inpatient",
    )
    assert codes_of(res)[0] == "J18.9"
    assert "R05.9" not in codes_of(res) and "R50.9" not in codes_of(res)  # integral, I.B.5
    assert res.codes[0].principal
    assert any(e.startswith("II.H") for e in res.codes[0].explanation)


def test_negated_and_hypothetical_never_coded(g: Guidelines) -> None:
    text = "Denies chest pain. Return if shortness of breath develops. Knee OA."
    res = run(
        g,
        text,
        [
            ("R07.9", "chest pain", "negated", 0.8),
            ("R06.02", "shortness of breath", "hypothetical", 0.7),
            ("M17.9", "Knee OA", "present", 0.8),
        ],
    )
    assert codes_of(res) == ["M17.9"]
    assert {s.code for s in res.suppressed} == {"R07.9", "R06.02"}
    assert all(s.reason for s in res.suppressed)


def test_family_history_becomes_z80(g: Guidelines) -> None:
    text = "FHx: father had colon cancer at 52. Here for screening."
    res = run(g, text, [("C18.9", "colon cancer", "family", 0.8)])
    assert codes_of(res) == ["Z80.0"]
    z = res.codes[0]
    assert z.evidence and z.evidence[0].text == "colon cancer"
    assert "C18.9" in {s.code for s in res.suppressed}


def test_screening_for_a_condition_gives_the_screening_code(g: Guidelines) -> None:
    text = "Low-dose CT chest for lung cancer screening: negative."
    res = run(g, text, [("C34.90", "lung cancer", "hypothetical", 0.8)])
    assert codes_of(res) == ["Z12.2"]
    assert "C34.90" in {s.code for s in res.suppressed}
    # a hypothetical mention that is not a screening gives nothing
    res = run(
        g,
        "If lung cancer is found, refer to oncology.",
        [("C34.90", "lung cancer", "hypothetical", 0.8)],
    )
    assert codes_of(res) == []


def test_a_residual_deficit_beats_history_without_residual(g: Guidelines) -> None:
    text = "PMH: stroke 2 yrs ago. Dysphagia as a residual of the stroke."
    res = run(g, text, [("I63.9", "stroke", "historical", 0.8)])
    assert "Z86.73" not in codes_of(res)
    res = run(
        g, "PMH: stroke 2 yrs ago, fully recovered.", [("I63.9", "stroke", "historical", 0.8)]
    )
    assert codes_of(res) == ["Z86.73"]


def test_personal_history_of_cancer_becomes_z85(g: Guidelines) -> None:
    text = "PMH: breast cancer s/p lumpectomy 2018, no recurrence."
    res = run(g, text, [("C50.919", "breast cancer", "historical", 0.8)])
    assert codes_of(res) == ["Z85.3"]


def test_history_of_chronic_condition_stays_current(g: Guidelines) -> None:
    text = "PMH: hypertension, hypothyroidism."
    res = run(
        g,
        text,
        [
            ("I10", "hypertension", "historical", 0.8),
            ("E03.9", "hypothyroidism", "historical", 0.7),
        ],
    )
    assert set(codes_of(res)) == {"I10", "E03.9"}


def test_mention_only_family_history(g: Guidelines) -> None:
    text = "Family history: mother with type 2 diabetes."
    ranked, mentions = build(text, [("E11.9", "type 2 diabetes", "family", 0.2)])
    res = g.apply(ranked, mentions, text=text, setting="outpatient", threshold=0.5)
    assert codes_of(res) == ["Z83.3"]


# -- combination codes (I.A.15, I.B.9, I.C.9.a, I.C.4.a, I.C.10) ------------------------------------
def test_hypertension_with_ckd(g: Guidelines) -> None:
    text = "Problem list: HTN; CKD 3a."
    res = run(g, text, [("I10", "HTN", "present", 0.9), ("N18.31", "CKD 3a", "present", 0.8)])
    assert codes_of(res) == ["I12.9", "N18.31"]
    assert any("I.C.9.a.2" in e for e in res.codes[0].explanation)
    assert by_code(res)["I10"] in res.candidates


def test_hypertension_heart_failure_and_esrd(g: Guidelines) -> None:
    text = "HTN. Chronic diastolic CHF. ESRD on HD."
    res = run(
        g,
        text,
        [
            ("I10", "HTN", "present", 0.9),
            ("I50.32", "Chronic diastolic CHF", "present", 0.8),
            ("N18.6", "ESRD", "present", 0.8),
        ],
    )
    assert set(codes_of(res)) == {"I13.2", "I50.32", "N18.6"}
    assert "I10" not in codes_of(res)


def test_hypertension_with_heart_failure(g: Guidelines) -> None:
    text = "Hypertension. Heart failure, chronic."
    res = run(
        g,
        text,
        [("I10", "Hypertension", "present", 0.9), ("I50.9", "Heart failure", "present", 0.8)],
    )
    assert "I11.0" in codes_of(res) and "I50.9" in codes_of(res)
    hf = by_code(res)["I50.9"]
    assert hf.status == "needs_query" and hf.query is not None


def test_diabetes_with_ckd_and_drugs(g: Guidelines) -> None:
    text = "T2DM on metformin and Lantus. CKD stage 4."
    res = run(
        g, text, [("E11.9", "T2DM", "present", 0.9), ("N18.4", "CKD stage 4", "present", 0.8)]
    )
    assert set(codes_of(res)) == {"E11.22", "N18.4", "Z79.4", "Z79.84"}
    assert codes_of(res).index("E11.22") < codes_of(res).index("N18.4")


def test_diabetes_neuropathy_replaces_separate_code(g: Guidelines) -> None:
    text = "DM2 with peripheral neuropathy, diet controlled."
    res = run(
        g,
        text,
        [("E11.9", "DM2", "present", 0.9), ("G62.9", "peripheral neuropathy", "present", 0.7)],
    )
    assert codes_of(res) == ["E11.42"]


def test_diabetes_link_broken_by_documentation(g: Guidelines) -> None:
    text = "DM2. Peripheral neuropathy not due to diabetes, from chemotherapy."
    res = run(
        g,
        text,
        [("E11.9", "DM2", "present", 0.9), ("G62.9", "Peripheral neuropathy", "present", 0.7)],
    )
    assert set(codes_of(res)) == {"E11.9", "G62.9"}


def test_copd_exacerbation_and_pneumonia(g: Guidelines) -> None:
    text = "AECOPD. CXR with RLL pneumonia."
    res = run(
        g,
        text,
        [("J44.9", "AECOPD", "present", 0.9), ("J18.9", "RLL pneumonia", "present", 0.8)],
        setting="inpatient",
    )
    got = set(codes_of(res))
    assert {"J44.0", "J44.1", "J18.9"} <= got and "J44.9" not in got


def test_copd_infection_code_needs_a_documented_infection(g: Guidelines) -> None:
    text = "COPD with acute exacerbation. Possible pneumonia: chest x-ray ordered."
    res = run(
        g,
        text,
        [
            ("J44.0", "COPD with acute exacerbation", "present", 0.7),
            ("J44.1", "COPD with acute exacerbation", "present", 0.7),
            ("J18.9", "pneumonia", "uncertain", 0.3),
        ],
        setting="outpatient",
    )
    got = set(codes_of(res))
    assert "J44.1" in got and "J44.0" not in got and "J18.9" not in got


def test_influenza_with_pneumonia(g: Guidelines) -> None:
    text = "Influenza A positive. Bilateral pneumonia on CXR."
    res = run(
        g,
        text,
        [("J10.1", "Influenza A", "present", 0.9), ("J18.9", "pneumonia", "present", 0.8)],
    )
    assert codes_of(res) == ["J10.00"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Influenza A (rapid test positive) complicated by pneumonia on CXR.", "J10.00"),
        ("Flu B with pneumonia. H1N1 neg.", "J10.00"),
        ("Influenza complicated by pneumonia on CXR.", "J11.00"),
    ],
)
def test_influenza_category_follows_the_virus_the_note_identifies(
    g: Guidelines, text: str, expected: str
) -> None:
    # both categories proposed at the same score: the note decides, not the ranker or the order
    flu = text.split(" ", 1)[0]
    spec = [
        ("J11.00", flu, "present", 0.8),
        ("J10.00", flu, "present", 0.8),
        ("J18.9", "pneumonia", "present", 0.8),
    ]
    assert codes_of(run(g, text, spec)) == [expected]


def test_pneumonia_due_to_named_organism(g: Guidelines) -> None:
    text = "Pneumonia. Sputum cx grew Klebsiella pneumoniae."
    res = run(
        g, text, [("J18.9", "Pneumonia", "present", 0.9), ("B96.1", "Klebsiella", "present", 0.6)]
    )
    assert codes_of(res) == ["J15.0"]


def test_ami_wall_and_vessel(g: Guidelines) -> None:
    text = "Acute MI. Cath: 100% proximal LAD occlusion, anterior STEMI."
    res = run(g, text, [("I21.9", "Acute MI", "present", 0.9)], setting="inpatient")
    assert codes_of(res) == ["I21.02"]


def test_asthma_severity_exacerbation(g: Guidelines) -> None:
    text = "Moderate persistent asthma with acute exacerbation."
    res = run(g, text, [("J45.909", "Moderate persistent asthma", "present", 0.9)])
    assert codes_of(res) == ["J45.41"]


# -- instructional notes (I.A.12, I.A.13, I.B.7) ------------------------------------------------------
def test_uti_with_organism(g: Guidelines) -> None:
    text = "UTI, urine culture >100k E. coli."
    res = run(g, text, [("N39.0", "UTI", "present", 0.9)])
    assert codes_of(res) == ["N39.0", "B96.20"]


def test_gdm_weeks_and_control(g: Guidelines) -> None:
    text = "G2P1 at 31w4d. Gestational diabetes, on insulin."
    res = run(g, text, [("O24.419", "Gestational diabetes", "present", 0.9)])
    assert set(codes_of(res)) == {"O24.414", "Z3A.31"}


def test_obesity_with_bmi(g: Guidelines) -> None:
    text = "Morbid obesity, BMI 42.7."
    res = run(g, text, [("E66.01", "Morbid obesity", "present", 0.9)])
    assert codes_of(res) == ["E66.01", "Z68.41"]


def test_excludes1_keeps_better_supported(g: Guidelines) -> None:
    text = "Type 1 diabetes. Type 2 diabetes."
    res = run(
        g,
        text,
        [
            ("E10.9", "Type 1 diabetes", "present", 0.9),
            ("E11.9", "Type 2 diabetes", "present", 0.6),
        ],
    )
    assert codes_of(res) == ["E10.9"]
    loser = by_code(res)["E11.9"]
    assert any(e.startswith("I.A.12.a") for e in loser.explanation)


def test_excludes2_allowed(g: Guidelines) -> None:
    text = "COPD. Bronchiectasis."
    res = run(
        g, text, [("J44.9", "COPD", "present", 0.9), ("J47.9", "Bronchiectasis", "present", 0.8)]
    )
    assert set(codes_of(res)) == {"J44.9", "J47.9"}


def test_code_first_sequencing(g: Guidelines) -> None:
    text = "Gastroparesis. Scleroderma."
    res = run(
        g,
        text,
        [("K31.84", "Gastroparesis", "present", 0.9), ("M34.9", "Scleroderma", "present", 0.6)],
    )
    assert codes_of(res) == ["M34.9", "K31.84"]


# -- integral symptoms (I.B.4-I.B.5) --------------------------------------------------------------------
def test_dysphagia_is_no_routine_sign_of_reflux(g: Guidelines) -> None:
    text = "Assessment: 1. GERD. 2. Dysphagia. 3. Heartburn."
    res = run(
        g,
        text,
        [
            ("K21.9", "GERD", "present", 0.9),
            ("R13.10", "Dysphagia", "present", 0.8),
            ("R12", "Heartburn", "present", 0.8),
        ],
    )
    assert codes_of(res) == ["K21.9", "R13.10"]  # heartburn is part of reflux (I.B.5)
    res = run(
        g,
        "Dysphagia. EGD: distal esophageal stricture, dilated.",
        [
            ("K22.2", "distal esophageal stricture", "present", 0.9),
            ("R13.10", "Dysphagia", "present", 0.8),
        ],
    )
    assert codes_of(res) == ["K22.2"]  # ... and part of a stricture


def test_integral_symptom_dropped_unrelated_kept(g: Guidelines) -> None:
    text = "RLQ abdominal pain, nausea. Acute appendicitis. Also chronic low back pain."
    res = run(
        g,
        text,
        [
            ("K35.80", "Acute appendicitis", "present", 0.9),
            ("R10.31", "RLQ abdominal pain", "present", 0.8),
            ("R11.0", "nausea", "present", 0.7),
            ("M54.50", "chronic low back pain", "present", 0.7),
        ],
    )
    assert set(codes_of(res)) == {"K35.80", "M54.50"}
    assert any(e.startswith("I.B.5") for e in by_code(res)["R10.31"].explanation)


# -- specificity, queries, billable (I.B.2, IV.F) -------------------------------------------------------
def test_ckd_unspecified_gets_query(g: Guidelines) -> None:
    text = "CKD, following with nephrology."
    res = run(g, text, [("N18.9", "CKD", "present", 0.9)])
    (s,) = res.codes
    assert s.status == "needs_query" and s.query is not None and s.query.axis == "stage"


def test_laterality_from_attribute(g: Guidelines) -> None:
    text = "Otitis media, left ear."
    res = run(
        g,
        text,
        [("H66.90", "Otitis media", "present", 0.9)],
        attrs={"Otitis media": [("laterality", "left", "left")]},
    )
    assert codes_of(res) == ["H66.92"]


def test_bilateral_without_a_bilateral_code_is_coded_for_each_side(g: Guidelines) -> None:
    # I.B.13: knee pain has right and left codes but no bilateral one; otitis media has one
    attrs = {"Knee pain": [("laterality", "bilateral", "bilateral")]}
    res = run(g, "Knee pain, bilateral.", [("M25.569", "Knee pain", "present", 0.9)], attrs=attrs)
    assert sorted(codes_of(res)) == ["M25.561", "M25.562"]
    assert all("I.B.13" in str(s.explanation) for s in res.codes)
    attrs = {"Otitis media": [("laterality", "bilateral", "bilateral")]}
    res = run(
        g, "Otitis media, bilateral.", [("H66.90", "Otitis media", "present", 0.9)], attrs=attrs
    )
    assert codes_of(res) == ["H66.93"]


def test_laterality_missing_gets_query(g: Guidelines) -> None:
    text = "Otitis media."
    res = run(g, text, [("H66.90", "Otitis media", "present", 0.9)])
    assert res.codes[0].status == "needs_query"
    assert res.codes[0].query.axis == "laterality"


def test_non_billable_never_in_codes(g: Guidelines) -> None:
    text = "Gestational diabetes."
    res = run(g, text, [("O24.41", "Gestational diabetes", "present", 0.9)])
    assert codes_of(res) == []
    cand = by_code(res)["O24.41"]
    assert cand.status == "needs_query" and cand.query is not None


def test_non_billable_replaced_by_ranked_child(g: Guidelines) -> None:
    text = "CKD stage 3 (moderate)."
    res = run(
        g,
        text,
        [("N18.3", "CKD stage 3", "present", 0.9), ("N18.31", "CKD stage 3", "present", 0.4)],
    )
    assert codes_of(res) == ["N18.31"]
