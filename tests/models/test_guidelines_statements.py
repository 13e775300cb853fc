"""Codes a statement documents by itself (statements.py): vaccine given (Z23), COVID-19
exposure (Z20.822), screening examinations (Z12, first-listed), from hand-built ranker output."""

from __future__ import annotations

from clinicode.models.guidelines import Guidelines
from tests.models.guidelines_helpers import codes_of, run


def test_vaccine_given_today_is_z23_not_when_declined_or_discussed(g: Guidelines) -> None:
    spec = [("S51.852A", "dog bite", "present", 0.9)]
    text = "Puncture wounds of L forearm from a dog bite. Last tetanus > 5 yrs: Tdap given today."
    assert codes_of(run(g, text, spec)) == ["S51.852A", "Z23"]
    for text in (
        "Puncture wounds from a dog bite. Tdap declined today.",
        "Puncture wounds from a dog bite. Tdap up to date.",
        "Puncture wounds from a dog bite. Discussed Tdap, given handout.",
    ):
        assert codes_of(run(g, text, spec)) == ["S51.852A"], text


def test_covid_exposure_without_the_disease(g: Guidelines) -> None:
    text = "Coworker tested positive for COVID-19 3 days ago. Asymptomatic. Antigen test negative."
    assert codes_of(run(g, text, [])) == ["Z20.822"]
    # with the disease coded, the exposure code is redundant
    text = "Exposed to COVID-19 at work; now COVID-19 positive with fever."
    assert codes_of(run(g, text, [("U07.1", "COVID-19 positive", "present", 0.9)])) == ["U07.1"]


def test_screening_colonoscopy_is_first_listed_surveillance_is_not_screening(g: Guidelines) -> None:
    spec = [("K63.5", "sigmoid colon polyp", "present", 0.9)]
    text = "Indication: average-risk screening colonoscopy. Impression: sigmoid colon polyp."
    assert codes_of(run(g, text, spec)) == ["Z12.11", "K63.5"]
    text = "Indication: surveillance colonoscopy, h/o adenoma. Impression: sigmoid colon polyp."
    assert "Z12.11" not in codes_of(run(g, text, spec))


def test_septic_shock_implies_sepsis_unless_an_infection_is_coded(g: Guidelines) -> None:
    text = "Multi-organ failure with septic shock."
    codes = codes_of(
        run(g, text, [("R65.21", "septic shock", "present", 0.9)], setting="inpatient")
    )
    assert codes == ["A41.9", "R65.21"]  # sepsis sequenced first (I.C.1.d.4)
    text = "E. coli sepsis with septic shock."
    spec = [
        ("A41.51", "E. coli sepsis", "present", 0.9),
        ("R65.21", "septic shock", "present", 0.9),
    ]
    assert "A41.9" not in codes_of(run(g, text, spec, setting="inpatient"))


def test_status_after_a_procedure_stated_as_past(g: Guidelines) -> None:
    spec = [("G51.0", "Bell's palsy", "present", 0.9)]
    for text in ("Bell's palsy. She had bypass in 1999.", "Bell's palsy. S/p CABG x3 2010."):
        assert codes_of(run(g, text, spec)) == ["G51.0", "Z95.1"], text
    for text in ("Bell's palsy. S/p gastric bypass 2015.", "Bell's palsy. CABG planned next week."):
        assert "Z95.1" not in codes_of(run(g, text, spec)), text
    text = "Bell's palsy. Has a pacemaker, interrogated in clinic. S/p kidney transplant 2012."
    assert codes_of(run(g, text, spec)) == ["G51.0", "Z95.0", "Z94.0"]
